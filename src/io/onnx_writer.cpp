// ONNX export: one inference-graph node becomes one ONNX node (the graph is built to be
// 1:1 with ONNX), each parameter one float initializer under its state_dict name. A
// quantized graph (quantized_export_graph, or an imported QDQ file) is then rewritten in
// QDQ form (onnx_qdq_writer.h).
//
// The declared input is [N, C, H, W] with a symbolic batch; H and W are concrete only when
// the caller fixed them by running infer_shapes() on the graph. The output's shape comes
// from Graph::infer_shapes too, with unknown spatial sizes left as unnamed dimensions, so
// that ONNX shape inference and runtimes fill them in.
#include <onnx/onnx_pb.h>

#include <array>
#include <bit>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "onnx_qdq_writer.h"
#include "resnet/core/error.h"
#include "resnet/infer/op_table.h"
#include "resnet/io/atomic_file.h"
#include "resnet/io/onnx.h"

namespace resnet::io {

namespace {

using infer::ElementType;
using infer::Graph;
using infer::Node;
using infer::OpKind;

constexpr int64_t kOpset = 13;
constexpr int64_t kIrVersion = 7;  // the IR version that goes with opset 13
constexpr int64_t kUnknown = infer::kUnknownDim;

// ONNX stores raw_data little-endian whatever the host's byte order.
template <typename T>
void append_le(std::string& out, T value) {
  using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  Bits bits = std::bit_cast<Bits>(value);
  for (size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
}

// Names in an ONNX graph share one namespace for inputs, initializers and node outputs,
// and each must be defined once. Parameters keep their names exactly (they are the
// state_dict keys); any other name that collides or is empty gets a numeric suffix.
class Names {
 public:
  bool taken(const std::string& name) const { return used_.count(name) > 0; }
  void reserve(const std::string& name) { used_.insert(name); }
  std::string unique(const std::string& wanted, const std::string& fallback) {
    const std::string base = wanted.empty() ? fallback : wanted;
    std::string name = base;
    for (int i = 1; used_.count(name); ++i) name = base + "_" + std::to_string(i);
    used_.insert(name);
    return name;
  }

 private:
  std::set<std::string> used_;
};

class Writer {
 public:
  Writer(const Graph& g, const std::string& path) : g_(g), path_(path) {}

  onnx::ModelProto build() {
    try {
      g_.validate();
    } catch (const Error& e) {
      RESNET_FAIL(path_ << ": cannot export an invalid graph: " << e.what());
    }
    RESNET_CHECK(g_.num_inputs == 1,
                 path_ << ": ONNX export expects a graph with one input, found " << g_.num_inputs);
    RESNET_CHECK(g_.output >= g_.num_inputs,
                 path_ << ": ONNX export expects the output to be computed by a node, found the "
                          "graph's input passed through");

    onnx::ModelProto model;
    model.set_ir_version(kIrVersion);
    model.set_producer_name("resnet");
    auto* opset = model.add_opset_import();
    opset->set_domain("");
    opset->set_version(kOpset);
    graph_ = model.mutable_graph();
    graph_->set_name("resnet");

    add_initializers();
    name_values();
    std::vector<Shape> shapes = infer_shapes();
    declare(*graph_->add_input(), 0, shapes[0]);
    for (const Node& n : g_.nodes) add_node(n);
    for (int v : g_.outputs()) declare(*graph_->add_output(), v, shapes[v]);
    const detail::QdqAnnotations quantized = qdq_annotations();
    if (!quantized.empty()) detail::rewrite_as_qdq(*graph_, quantized);
    return model;
  }

 private:
  void add_initializers() {
    // One initializer per distinct name; a graph imported from ONNX may share one tensor
    // between nodes, which is fine, but two different tensors under one name are not.
    std::map<std::string, const Tensor*> written;
    for (const infer::Param* p : g_.all_params()) {
      auto it = written.find(p->name);
      if (it != written.end()) {
        RESNET_CHECK(it->second->same_storage(p->value),
                     path_ << ": two different parameters are both named '" << p->name << "'");
        continue;
      }
      RESNET_CHECK(!p->name.empty(), path_ << ": a parameter has no name");
      const Tensor& t = p->value;
      RESNET_CHECK(t.dtype() == DType::f32 && t.is_plain(),
                   path_ << ": parameter '" << p->name << "': expected a plain f32 tensor, found "
                         << dtype_name(t.dtype()) << (t.is_plain() ? "" : " (blocked layout)"));
      written.emplace(p->name, &t);
      names_.reserve(p->name);
      onnx::TensorProto& init = *graph_->add_initializer();
      init.set_name(p->name);
      init.set_data_type(onnx::TensorProto::FLOAT);
      for (int64_t d : t.shape()) init.add_dims(d);
      std::string bytes;
      if constexpr (std::endian::native == std::endian::little) {
        bytes.assign(static_cast<const char*>(t.raw()), static_cast<size_t>(t.numel()) * 4);
      } else {
        bytes.reserve(static_cast<size_t>(t.numel()) * 4);
        for (float v : t.values()) append_le(bytes, v);
      }
      init.set_raw_data(std::move(bytes));
    }
  }

  // A quantized graph's grids and weight steps, by the names the file gives them.
  detail::QdqAnnotations qdq_annotations() const {
    detail::QdqAnnotations a;
    for (size_t v = 0; v < g_.values.size(); ++v)
      if (g_.values[v].quant.has_value() && static_cast<int>(v) != g_.output)
        a.values[value_names_[v]] = *g_.values[v].quant;
    for (const Node& n : g_.nodes)
      if (n.op == OpKind::conv && !n.weight_steps.empty())
        a.weight_steps[n.params[0].name] = n.weight_steps;
    return a;
  }

  // "input" and "output" are fixed by the format we promise; the rest keep the readable
  // names lowering gave them (module paths).
  void name_values() {
    RESNET_CHECK(!names_.taken("input") && !names_.taken("output"),
                 path_ << ": a parameter is named 'input' or 'output', which name the graph's "
                          "input and output");
    names_.reserve("input");
    names_.reserve("output");
    value_names_.assign(g_.values.size(), "");
    value_names_[0] = "input";
    value_names_[g_.output] = "output";
    for (size_t v = 1; v < g_.values.size(); ++v)
      if (static_cast<int>(v) != g_.output)
        value_names_[v] = names_.unique(g_.values[v].name, "value" + std::to_string(v));
  }

  // Input channels: the first convolution's weight says what the network reads.
  int64_t input_channels() const {
    for (const Node& n : g_.nodes)
      if (n.op == OpKind::conv) return n.params[0].value.dim(1) * n.window.groups;
    RESNET_FAIL(path_ << ": ONNX export expects a convolution to learn the input channels from, "
                         "found none");
  }

  // Shapes with kUnknownDim for what only a runtime knows, from Graph::infer_shapes:
  // the batch is always symbolic, H and W are unless the caller fixed them. Channel
  // counts are always known from the parameters.
  std::vector<Shape> infer_shapes() {
    const Shape& fixed = g_.values[0].shape;
    const int64_t channels = input_channels();
    Shape input{kUnknown, channels, kUnknown, kUnknown};
    if (fixed.size() == 4) {
      RESNET_CHECK(fixed[1] == channels || fixed[1] == kUnknown,
                   path_ << ": the graph's input shape " << shape_str(fixed)
                         << " does not match the first convolution's " << channels
                         << " input channels");
      input[2] = fixed[2], input[3] = fixed[3];
    }
    Graph shaped = g_;  // shares the parameters' storage; only the shapes are new
    try {
      shaped.infer_shapes(input);
    } catch (const Error& e) {
      RESNET_FAIL(path_ << ": cannot export: " << e.what());
    }
    std::vector<Shape> s;
    for (const infer::Value& v : shaped.values) {
      s.push_back(v.shape);
      types_.push_back(v.type);
    }
    return s;
  }

  void declare(onnx::ValueInfoProto& info, int value, const Shape& shape) const {
    info.set_name(value_names_[value]);
    auto* tensor = info.mutable_type()->mutable_tensor_type();
    const ElementType type = types_[static_cast<size_t>(value)];
    tensor->set_elem_type(type == ElementType::i64       ? onnx::TensorProto::INT64
                          : type == ElementType::boolean ? onnx::TensorProto::BOOL
                                                         : onnx::TensorProto::FLOAT);
    auto* dims = tensor->mutable_shape();
    static const char* const kSymbols[] = {"N", "C", "H", "W"};
    for (size_t i = 0; i < shape.size(); ++i) {
      auto* d = dims->add_dim();
      if (i == 0) {
        d->set_dim_param("N");
      } else if (shape[i] != kUnknown) {
        d->set_dim_value(shape[i]);
      } else if (value == 0) {
        d->set_dim_param(kSymbols[i]);
      }
      // Otherwise an unnamed dimension: the output's spatial size follows from H and W in
      // a way ONNX shape inference works out better than a name we could give.
    }
  }

 public:
  const std::string& path() const { return path_; }

  // The constant operands Slice and Pad take as inputs since opsets 10 and 11: written as
  // INT64 initializers named after the node, e.g. "layer2.0.downsample.subsample.steps".
  std::string int64_initializer(const std::string& node_name, const std::string& what,
                                const std::vector<int64_t>& values) {
    const std::string name = names_.unique(node_name + "." + what, what);
    onnx::TensorProto& init = *graph_->add_initializer();
    init.set_name(name);
    init.set_data_type(onnx::TensorProto::INT64);
    init.add_dims(static_cast<int64_t>(values.size()));
    std::string bytes;
    for (int64_t v : values) append_le(bytes, v);
    init.set_raw_data(std::move(bytes));
    return name;
  }

  // A FLOAT scalar operand (Clip's bounds since opset 11).
  std::string float_initializer(const std::string& node_name, const std::string& what,
                                float value) {
    const std::string name = names_.unique(node_name + "." + what, what);
    onnx::TensorProto& init = *graph_->add_initializer();
    init.set_name(name);
    init.set_data_type(onnx::TensorProto::FLOAT);
    init.add_float_data(value);
    return name;
  }

 private:
  // The op type, name, inputs, parameters and output alike for all ops; the rest from
  // the op's emitter (kEmitters below).
  void add_node(const Node& n);

  const Graph& g_;
  const std::string& path_;
  Names names_;       // initializers and values: one namespace
  Names node_names_;  // node names: their own namespace
  std::vector<std::string> value_names_;
  std::vector<ElementType> types_;     // per value, from infer_shapes()
  onnx::GraphProto* graph_ = nullptr;  // inside the model build() returns
};

void attr_ints(onnx::NodeProto& node, const char* name, std::vector<int64_t> values) {
  auto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) a->add_ints(v);
}
void attr_int(onnx::NodeProto& node, const char* name, int64_t value) {
  auto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(value);
}
void attr_float(onnx::NodeProto& node, const char* name, float value) {
  auto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(value);
}
void attr_string(onnx::NodeProto& node, const char* name, const std::string& value) {
  auto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(value);
}

void window_attrs(onnx::NodeProto& node, const infer::Window& w) {
  attr_ints(node, "kernel_shape", {w.kernel_h, w.kernel_w});
  attr_ints(node, "strides", {w.stride_h, w.stride_w});
  attr_ints(node, "pads", {w.pad_t, w.pad_l, w.pad_b, w.pad_r});
}

// How each OpKind writes its attributes and constant operands, in enum order; the op
// type, the node's name, its inputs, parameters and output are written alike for all.
using Emit = void (*)(Writer& writer, const Node& n, onnx::NodeProto& node);
struct OpEmitter {
  OpKind op;
  Emit emit;
};

void emit_nothing(Writer&, const Node&, onnx::NodeProto&) {}

void emit_conv(Writer&, const Node& n, onnx::NodeProto& node) {
  const infer::Window& w = n.window;
  window_attrs(node, w);
  attr_ints(node, "dilations", {w.dilation_h, w.dilation_w});
  attr_int(node, "group", w.groups);
}

void emit_batch_norm(Writer& writer, const Node& n, onnx::NodeProto& node) {
  RESNET_CHECK(!n.training, writer.path()
                                << ": node '" << n.name
                                << "' (BatchNormalization) trains (training_mode 1), "
                                << "which ONNX export at opset " << kOpset << " cannot write");
  attr_float(node, "epsilon", static_cast<float>(n.eps));
}

void emit_max_pool(Writer&, const Node& n, onnx::NodeProto& node) {
  window_attrs(node, n.window);
  if (n.window.dilation_h != 1 || n.window.dilation_w != 1)
    attr_ints(node, "dilations", {n.window.dilation_h, n.window.dilation_w});
  attr_int(node, "ceil_mode", n.window.ceil_mode ? 1 : 0);
  if (n.indices_column_major) attr_int(node, "storage_order", 1);
}

void emit_avg_pool(Writer&, const Node& n, onnx::NodeProto& node) {
  window_attrs(node, n.window);
  attr_int(node, "ceil_mode", n.window.ceil_mode ? 1 : 0);
  attr_int(node, "count_include_pad", n.window.count_include_pad ? 1 : 0);
}

void emit_flatten(Writer&, const Node&, onnx::NodeProto& node) {
  attr_int(node, "axis", 1);
}

void emit_linear(Writer&, const Node&, onnx::NodeProto& node) {
  attr_int(node, "transB", 1);
}

// x[:, :, ::sh, ::sw]: from 0 to the end (INT64_MAX clamps to the size) on H and W.
void emit_subsample(Writer& writer, const Node& n, onnx::NodeProto& node) {
  constexpr int64_t kEnd = std::numeric_limits<int64_t>::max();
  node.add_input(writer.int64_initializer(node.name(), "starts", {0, 0}));
  node.add_input(writer.int64_initializer(node.name(), "ends", {kEnd, kEnd}));
  node.add_input(writer.int64_initializer(node.name(), "axes", {2, 3}));
  node.add_input(
      writer.int64_initializer(node.name(), "steps", {n.window.stride_h, n.window.stride_w}));
}

// ONNX pads: every axis's start, then every axis's end; only channels grow.
void emit_pad_channels(Writer& writer, const Node& n, onnx::NodeProto& node) {
  node.add_input(
      writer.int64_initializer(node.name(), "pads", {0, n.pads[0], 0, 0, 0, n.pads[1], 0, 0}));
  attr_string(node, "mode", "constant");
}

// Along one axis: opset 13's meaning. The older 2-D view (coerce_2d) has no opset-13
// form of one node.
void emit_softmax(Writer&, const Node& n, onnx::NodeProto& node) {
  RESNET_CHECK(!n.coerce_2d, infer::describe(n)
                                 << ": a softmax over a 2-D view of its input (before "
                                    "opset 13) cannot be written at opset "
                                 << kOpset);
  attr_int(node, "axis", n.axis);
}

// c - x and c / x: the constant operand first.
void emit_binary(Writer&, const Node& n, onnx::NodeProto& node) {
  if (n.constant_first) node.mutable_input()->SwapElements(0, 1);
}

void emit_clip(Writer& writer, const Node& n, onnx::NodeProto& node) {
  node.add_input(writer.float_initializer(node.name(), "min", n.clip_min));
  node.add_input(writer.float_initializer(node.name(), "max", n.clip_max));
}

void emit_reduce_mean(Writer&, const Node& n, onnx::NodeProto& node) {
  if (!n.axes.empty()) attr_ints(node, "axes", n.axes);
  attr_int(node, "keepdims", n.keepdims ? 1 : 0);
}

// Reshape, Flatten, Squeeze or Unsqueeze, as the node's rule says (opset 13's forms).
void emit_reshape(Writer& writer, const Node& n, onnx::NodeProto& node) {
  switch (n.shape_rule) {
    case infer::ShapeRule::reshape:
      RESNET_CHECK(!n.allowzero, infer::describe(n) << ": allowzero needs opset 14; export "
                                                       "writes opset "
                                                    << kOpset);
      node.add_input(writer.int64_initializer(node.name(), "shape", n.axes));
      break;
    case infer::ShapeRule::flatten:
      node.set_op_type("Flatten");
      attr_int(node, "axis", n.axes.at(0));
      break;
    case infer::ShapeRule::squeeze:
      node.set_op_type("Squeeze");
      if (!n.axes.empty()) node.add_input(writer.int64_initializer(node.name(), "axes", n.axes));
      break;
    case infer::ShapeRule::unsqueeze:
      node.set_op_type("Unsqueeze");
      node.add_input(writer.int64_initializer(node.name(), "axes", n.axes));
      break;
  }
}

void emit_transpose(Writer&, const Node& n, onnx::NodeProto& node) {
  if (!n.axes.empty()) attr_ints(node, "perm", n.axes);
}

constexpr std::array<OpEmitter, infer::kOpCount> kEmitters = {{
    {OpKind::conv, emit_conv},
    {OpKind::batch_norm, emit_batch_norm},
    {OpKind::relu, emit_nothing},
    {OpKind::add, emit_nothing},
    {OpKind::max_pool, emit_max_pool},
    {OpKind::avg_pool, emit_avg_pool},
    {OpKind::global_avg_pool, emit_nothing},
    {OpKind::flatten, emit_flatten},
    {OpKind::linear, emit_linear},
    {OpKind::subsample, emit_subsample},
    {OpKind::pad_channels, emit_pad_channels},
    {OpKind::softmax, emit_softmax},
    {OpKind::add_constant, emit_binary},
    {OpKind::sub_constant, emit_binary},
    {OpKind::mul_constant, emit_binary},
    {OpKind::div_constant, emit_binary},
    {OpKind::clip, emit_clip},
    {OpKind::reduce_mean, emit_reduce_mean},
    {OpKind::reshape, emit_reshape},
    {OpKind::transpose, emit_transpose},
    {OpKind::matmul, emit_nothing},
    {OpKind::dropout, emit_nothing},
}};
static_assert(infer::covers_every_op(kEmitters), "ONNX export needs an emitter per OpKind");

void Writer::add_node(const Node& n) {
  onnx::NodeProto& node = *graph_->add_node();
  node.set_op_type(infer::op_name(n.op));
  node.set_name(node_names_.unique(n.name, std::string(infer::op_name(n.op))));
  for (int in : n.inputs) node.add_input(value_names_[in]);
  for (const infer::Param& p : n.params) node.add_input(p.name);
  node.add_output(value_names_[n.output]);
  for (int v : n.extra_outputs) node.add_output(value_names_[v]);
  kEmitters[static_cast<size_t>(n.op)].emit(*this, n, node);
}

}  // namespace

void write_onnx(const infer::Graph& graph, const std::string& path) {
  // Said before any work, in words a user acts on; the atomic writer would only report
  // that its temporary file could not be created.
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  std::error_code ec;
  RESNET_CHECK(
      dir.empty() || std::filesystem::is_directory(dir, ec),
      path << ": expected an existing directory " << dir.string() << " to write into, found none");
  onnx::ModelProto model = Writer(graph, path).build();
  // Protobuf refuses to serialize a message of 2 GiB or more; say so rather than fail
  // inside it.
  const size_t size = model.ByteSizeLong();
  RESNET_CHECK(size < static_cast<size_t>(std::numeric_limits<int32_t>::max()),
               path << ": the model needs " << size
                    << " bytes, more than the 2 GiB a single ONNX protobuf file can hold");
  std::string bytes;
  RESNET_CHECK(model.SerializeToString(&bytes), path << ": protobuf failed to serialize the model");
  write_file_atomic(path, bytes);
}

}  // namespace resnet::io
