#include "onnx_importer.h"

#include "onnx_tensor.h"
#include "resnet/core/error.h"

namespace resnet::io::detail {

namespace {

// Graph::infer_shapes and validate name the node themselves ("node 'x' (Conv): ..."); our
// messages name it in the file's terms already, so that prefix goes.
std::string without_node_prefix(const std::string& message) {
  if (message.rfind("node '", 0) != 0) return message;
  const size_t end = message.find("): ");
  return end == std::string::npos ? message : message.substr(end + 3);
}

// The permutation of a Transpose node: its `perm` attribute (empty when absent, which
// means reversed axes).
std::vector<int64_t> transpose_perm(const onnx::NodeProto& n) {
  for (const onnx::AttributeProto& a : n.attribute())
    if (a.name() == "perm") return {a.ints().begin(), a.ints().end()};
  return {};
}

}  // namespace

using infer::Node;
using infer::OpKind;

Importer::Importer(std::string file, int64_t opset, const onnx::GraphProto& graph)
    : file_(std::move(file)), opset_(opset), proto_(graph) {}

std::string Importer::here() const {
  return file_ + ": node '" + node_name_ + "' (" + node_->op_type() + ", opset " +
         std::to_string(opset_) + ")";
}

infer::Graph Importer::run() {
  RESNET_CHECK(proto_.sparse_initializer_size() == 0,
               file_ << ": the graph has sparse initializers, which are not supported");
  RESNET_CHECK(proto_.node_size() > 0, file_ << ": expected a graph with nodes, found none");
  add_initializers();
  add_input();
  index_nodes();
  for (int i = 0; i < proto_.node_size(); ++i) convert(i);
  node_ = nullptr;
  set_output();
  final_checks();
  return std::move(g_);
}

void Importer::add_initializers() {
  for (const onnx::TensorProto& t : proto_.initializer()) {
    RESNET_CHECK(!t.name().empty(), file_ << ": expected every initializer to have a name");
    // Checked here, not when read: the message should say this before anything else.
    RESNET_CHECK(
        t.data_location() != onnx::TensorProto_DataLocation_EXTERNAL && t.external_data_size() == 0,
        file_ << ": tensor '" << t.name()
              << "' uses external data, which is not supported (save the model with "
                 "its weights inside the .onnx file)");
    Symbol s;
    s.kind = Symbol::Kind::constant;
    s.proto = &t;
    s.name = t.name();
    RESNET_CHECK(symbols_.emplace(t.name(), std::move(s)).second,
                 file_ << ": initializer '" << t.name() << "' is defined twice");
  }
}

void Importer::add_input() {
  // Older exporters list every initializer among the inputs too; the real input is the
  // one that is not an initializer.
  std::vector<const onnx::ValueInfoProto*> real;
  for (const onnx::ValueInfoProto& v : proto_.input())
    if (!symbols_.count(v.name())) real.push_back(&v);
  RESNET_CHECK(real.size() == 1, file_ << ": expected exactly one graph input besides the "
                                          "initializers, found "
                                       << real.size());
  const onnx::ValueInfoProto& in = *real[0];
  RESNET_CHECK(!in.name().empty(), file_ << ": the graph input has no name");
  const std::string who = file_ + ": input '" + in.name() + "'";
  RESNET_CHECK(in.type().has_tensor_type(), who << ": expected a tensor, found another type");
  const onnx::TypeProto_Tensor& tt = in.type().tensor_type();
  RESNET_CHECK(tt.elem_type() == onnx::TensorProto_DataType_FLOAT,
               who << ": expected FLOAT elements, found " << onnx_dtype_name(tt.elem_type()));
  RESNET_CHECK(tt.has_shape(), who << ": expected a declared shape ([N, C, H, W] for a network), "
                                      "found none");
  const int rank = tt.shape().dim_size();
  RESNET_CHECK(rank >= 1 && rank <= static_cast<int>(infer::kMaxRank),
               who << ": expected 1 to " << infer::kMaxRank << " dimensions ([N, C, H, W] for a "
                   << "network), found " << rank);
  // Shapes are checked as the graph is built when every size after the first is
  // concrete; a symbolic batch is checked as 1 (every op here treats the samples of a
  // batch independently). An NHWC input read only by a Transpose to NCHW (tf2onnx,
  // Keras) is taken as NCHW: the Transpose becomes an alias of the input, so the graph
  // takes [N, C, H, W] as every model here.
  input_is_nhwc_ = rank == 4 && read_only_by_nhwc_to_nchw(in.name());
  std::vector<int> axes(static_cast<size_t>(rank));
  for (int i = 0; i < rank; ++i) axes[static_cast<size_t>(i)] = i;
  if (input_is_nhwc_) axes = {0, 3, 1, 2};
  shapes_ = true;
  for (int i = 0; i < rank; ++i) {
    const int axis = axes[static_cast<size_t>(i)];
    const auto& d = tt.shape().dim(axis);
    RESNET_CHECK(!d.has_dim_value() || (d.dim_value() >= 0 && d.dim_value() <= (1 << 20)),
                 who << ": expected dims in [0, 2^20] or symbolic, found " << d.dim_value()
                     << " at axis " << axis);
    const bool known = d.has_dim_value() && d.dim_value() > 0;
    input_shape_.push_back(known ? d.dim_value() : 1);
    declared_input_.push_back(known ? d.dim_value() : infer::kUnknownDim);
    if (i > 0 && !known) shapes_ = false;
  }
  g_.add_value(in.name());
  g_.values[0].shape = input_shape_;
  Symbol s;
  s.value = 0;
  symbols_[in.name()] = s;
}

bool Importer::read_only_by_nhwc_to_nchw(const std::string& input) const {
  int readers = 0, transposes = 0;
  for (const onnx::NodeProto& n : proto_.node())
    for (const std::string& i : n.input()) {
      if (i != input) continue;
      ++readers;
      transposes += n.op_type() == "Transpose" && n.domain().empty() &&
                    transpose_perm(n) == std::vector<int64_t>{0, 3, 1, 2};
    }
  return readers > 0 && readers == transposes;
}

// The NHWC-to-NCHW Transpose of the graph input (see add_input) is an alias of it; any
// other is a transpose tensor op.
void Importer::op_transpose() {
  expect_arity(1, 1);
  const bool of_input = input(0).kind == Symbol::Kind::activation && input(0).value == 0;
  if (of_input && input_is_nhwc_) {
    define(input(0));
    return;
  }
  Node n;
  n.op = OpKind::transpose;
  n.inputs = {activation(0).value};
  n.axes = transpose_perm(*node_);
  define_activation(emit(std::move(n)));
}

void Importer::index_nodes() {
  for (int i = 0; i < proto_.node_size(); ++i) {
    const onnx::NodeProto& n = proto_.node(i);
    for (const std::string& out : n.output()) {
      if (out.empty()) continue;
      node_ = &n;
      node_name_ = n.name().empty() ? n.op_type() + "#" + std::to_string(i) : n.name();
      RESNET_CHECK(!symbols_.count(out), here() << ": writes '" << out
                                                << "', which is already the graph input or "
                                                << "an initializer");
      auto [it, fresh] = producer_.emplace(out, i);
      RESNET_CHECK(fresh, here() << ": writes '" << out << "', which node #" << it->second
                                 << " already writes");
    }
    for (const std::string& in : n.input())
      if (!in.empty()) ++reads_[in];
  }
  for (const onnx::ValueInfoProto& v : proto_.output()) ++reads_[v.name()];
}

// One converter per ONNX operator read. Every OpKind's own operator (infer::op_name) is
// among them, which tests/infer/test_op_table.cpp checks by a round trip of each op; the
// others (MatMul, Reshape, Identity, Constant) become ops of another name or none.
const Importer::Converter Importer::kConverters[] = {
    {"Conv", &Importer::op_conv, 1},
    {"BatchNormalization", &Importer::op_batch_norm, 7},
    {"Relu", &Importer::op_relu, 1},
    {"Add", &Importer::op_add, 7},
    {"MaxPool", &Importer::op_max_pool, 1},
    {"AveragePool", &Importer::op_avg_pool, 1},
    {"GlobalAveragePool", &Importer::op_global_avg_pool, 1},
    {"Flatten", &Importer::op_flatten, 1},
    {"Gemm", &Importer::op_gemm, 7},
    {"MatMul", &Importer::op_matmul, 1},
    {"Reshape", &Importer::op_reshape, 5},
    {"Identity", &Importer::op_identity, 1},
    {"Constant", &Importer::op_constant, 1},
    {"Pad", &Importer::op_pad, 2},
    {"Slice", &Importer::op_slice, 1},
    {"Clip", &Importer::op_clip, 6},
    {"Dropout", &Importer::op_dropout, 7},
    {"Mul", &Importer::op_mul, 7},
    {"Sub", &Importer::op_sub, 7},
    {"Div", &Importer::op_div, 7},
    {"ReduceMean", &Importer::op_reduce_mean, 1},
    {"Squeeze", &Importer::op_squeeze, 1},
    {"Unsqueeze", &Importer::op_unsqueeze, 1},
    {"Softmax", &Importer::op_softmax, 1},
    {"Transpose", &Importer::op_transpose, 1},
    {"QuantizeLinear", &Importer::op_quantize_linear, 10},
    {"DequantizeLinear", &Importer::op_dequantize_linear, 10},
    {"QLinearConv", &Importer::op_qlinear_conv, 10},
    {"QLinearMatMul", &Importer::op_qlinear_matmul, 10},
    {"QLinearAdd", &Importer::op_qlinear_add, 10, "com.microsoft"},
    {"QLinearGlobalAveragePool", &Importer::op_qlinear_global_avg_pool, 10, "com.microsoft"},
};

// "Conv, BatchNormalization, ...": what an unsupported operator's message lists.
std::string Importer::supported_ops() {
  std::string list;
  for (const Converter& c : kConverters) {
    list += (list.empty() ? "" : ", ") + std::string(c.op_type);
    if (*c.domain) list += " (" + std::string(c.domain) + ")";
  }
  return list;
}

void Importer::convert(int index) {
  node_ = &proto_.node(index);
  const onnx::NodeProto& n = *node_;
  node_name_ = n.name().empty() ? n.op_type() + "#" + std::to_string(index) : n.name();
  const std::string domain = n.domain() == "ai.onnx" ? "" : n.domain();
  RESNET_CHECK(domain.empty() || domain == "com.microsoft",
               here() << ": expected an operator of the default ONNX domain, found domain '"
                      << n.domain() << "'; supported: " << supported_ops());
  run_converter(domain);
}

void Importer::run_converter(const std::string& domain) {
  const std::string& op = node_->op_type();
  for (const Converter& c : kConverters) {
    if (op != c.op_type || domain != c.domain) continue;
    RESNET_CHECK(opset_ >= c.since, here()
                                        << ": expected opset " << c.since << " or later for " << op
                                        << ", whose older versions have other "
                                           "attributes; re-export the model at opset 13");
    return (this->*c.convert)();
  }
  RESNET_FAIL(here() << ": unsupported operator"
                     << (domain.empty() ? "" : " of domain '" + domain + "'")
                     << "; supported: " << supported_ops());
}

Symbol& Importer::input(int i) {
  RESNET_CHECK(has_input(i), here() << ": expected input " << i << ", found none");
  const std::string& name = node_->input(i);
  auto it = symbols_.find(name);
  if (it != symbols_.end()) return it->second;
  auto p = producer_.find(name);
  if (p != producer_.end()) {
    const onnx::NodeProto& later = proto_.node(p->second);
    RESNET_FAIL(here() << ": reads '" << name << "' before it is produced (by node '"
                       << (later.name().empty() ? later.op_type() : later.name())
                       << "'); nodes must be in topological order");
  }
  RESNET_FAIL(here() << ": reads '" << name
                     << "', which is no initializer, graph input or node output");
}

Symbol& Importer::activation(int i, bool allow_pending_pad, bool allow_quantized) {
  Symbol& s = input(i);
  RESNET_CHECK(s.kind == Symbol::Kind::activation,
               here() << ": expected input " << i << " ('" << node_->input(i)
                      << "') to be computed from the graph input, found a constant");
  RESNET_CHECK(allow_quantized || !s.quant.has_value(),
               here() << ": reads '" << node_->input(i)
                      << "', the integers of a QuantizeLinear; expected float values (a "
                         "DequantizeLinear between them)");
  RESNET_CHECK(allow_pending_pad || !s.has_pending_pad(),
               here() << ": reads '" << node_->input(i)
                      << "', zero-padded on H and W by a Pad; such padding is supported only "
                         "right before a Conv or an AveragePool with count_include_pad=1");
  return s;
}

Symbol& Importer::decoded_constant(int i, const char* role, Decoder decode) {
  Symbol& s = input(i);
  RESNET_CHECK(s.kind == Symbol::Kind::constant,
               here() << ": expected the " << role << " (input " << i << ", '" << node_->input(i)
                      << "') to be an initializer or a constant, found a computed value");
  if (!s.tensor.defined()) {
    try {
      const std::string& name = s.proto->name().empty() ? s.name : s.proto->name();
      s.tensor = decode(*s.proto, "tensor '" + name + "'");
    } catch (const Error& e) {
      RESNET_FAIL(here() << ": " << role << " " << e.what());
    }
  }
  return s;
}

Symbol& Importer::constant(int i, DType dtype, const char* role) {
  Symbol& s = decoded_constant(i, role, decode_onnx_tensor);
  RESNET_CHECK(s.tensor.dtype() == dtype,
               here() << ": expected the " << role << " '" << s.name << "' to be "
                      << (dtype == DType::f32 ? "FLOAT" : "INT64") << ", found "
                      << onnx_dtype_name(s.proto->data_type()));
  return s;
}

Symbol& Importer::integer_constant(int i, const char* role) {
  Symbol& s = decoded_constant(i, role, decode_onnx_integers);
  RESNET_CHECK(
      s.tensor.dtype() == DType::i64 && s.proto->data_type() != onnx::TensorProto_DataType_INT64,
      here() << ": expected the " << role << " '" << s.name
             << "' to be INT8, UINT8 or INT32, found " << onnx_dtype_name(s.proto->data_type()));
  return s;
}

std::vector<int64_t> Importer::constant_ints(int i, const char* role) {
  const Tensor& t = constant(i, DType::i64, role).tensor;
  return {t.i64(), t.i64() + t.numel()};
}

std::vector<int64_t> Importer::axes_of(const NodeAttributes& attrs, int64_t input_since) {
  if (opset_ < input_since) return attrs.get_ints("axes", {});
  return has_input(1) ? constant_ints(1, "axes") : std::vector<int64_t>{};
}

void Importer::expect_arity(int lo, int hi, int extra) {
  int given = 0;
  for (int i = 0; i < node_->input_size(); ++i) given = node_->input(i).empty() ? given : i + 1;
  RESNET_CHECK(given >= lo && node_->input_size() <= hi,
               here() << ": expected " << lo << (hi != lo ? " to " + std::to_string(hi) : "")
                      << " input(s), found " << node_->input_size());
  RESNET_CHECK(node_->output_size() >= 1 && !node_->output(0).empty(),
               here() << ": expected an output, found none");
  // Outputs the converter does not write (a BatchNormalization's statistics outside
  // training) may be named as long as nothing reads them.
  for (int i = 1 + extra; i < node_->output_size(); ++i) {
    const std::string& extra = node_->output(i);
    RESNET_CHECK(
        extra.empty() || reads_[extra] == 0,
        here() << ": expected one output (inference), found also '" << extra << "', which is read");
  }
}

std::vector<int> Importer::read_extra_outputs(int most) {
  int last = 0;
  for (int i = 1; i <= most && i < node_->output_size(); ++i)
    if (!node_->output(i).empty() && reads_[node_->output(i)] > 0) last = i;
  std::vector<int> values;
  for (int i = 1; i <= last; ++i)
    values.push_back(g_.add_value(node_->output(i).empty()
                                      ? node_->output(0) + ".output" + std::to_string(i)
                                      : node_->output(i)));
  return values;
}

void Importer::define_extra_outputs(const std::vector<int>& values) {
  for (size_t i = 0; i < values.size(); ++i) {
    const std::string& name = node_->output(static_cast<int>(i) + 1);
    if (name.empty()) continue;
    Symbol s;
    s.value = values[i];
    symbols_[name] = s;
  }
}

int Importer::emit(infer::Node n) {
  return emit_step(std::move(n), "");
}

int Importer::emit_step(infer::Node n, const std::string& suffix) {
  n.name = node_name_ + suffix;
  const int v = g_.add_node(std::move(n), node_->output(0) + suffix);
  check_shapes(v);
  return v;
}

int Importer::emit_unary(infer::OpKind op, int x) {
  infer::Node n;
  n.op = op;
  n.inputs = {x};
  return emit(std::move(n));
}

void Importer::check_shapes(int last_value) {
  try {
    g_.output = last_value;
    if (shapes_) {
      g_.infer_shapes(input_shape_);
    } else {
      g_.validate();
    }
  } catch (const Error& e) {
    RESNET_FAIL(here() << ": " << without_node_prefix(e.what()));
  }
  g_.output = -1;
}

void Importer::define(Symbol s) {
  symbols_[node_->output(0)] = std::move(s);
}

void Importer::define_activation(int v) {
  Symbol s;
  s.value = v;
  define(std::move(s));
}

void Importer::define_rearranged(int v, const Symbol& from) {
  const std::optional<infer::Quantization> grid = from.quant;  // `from` may be rebound below
  define_activation(v);
  if (!grid.has_value()) return;
  g_.values[v].quant = grid;
  symbols_[node_->output(0)].quant = grid;
}

const Shape& Importer::shape_of(int v, const char* why, bool with_depth) const {
  RESNET_CHECK(shapes_, here() << ": " << why
                               << " needs the input's channels, height and width, but the "
                                  "graph input's shape is symbolic");
  const Shape& shape = g_.values[v].shape;
  RESNET_CHECK(shape.size() == (with_depth ? 5u : 4u),
               here() << ": " << why << " needs a "
                      << (with_depth ? "5-D input [N, C, D, H, W]" : "4-D input [N, C, H, W]")
                      << ", found " << shape_str(shape));
  return shape;
}

void Importer::set_output() {
  RESNET_CHECK(proto_.output_size() >= 1,
               file_ << ": expected at least one graph output, found none");
  for (int i = 0; i < proto_.output_size(); ++i) {
    const std::string& name = proto_.output(i).name();
    auto it = symbols_.find(name);
    RESNET_CHECK(it != symbols_.end(),
                 file_ << ": the graph output '" << name << "' is produced by no node");
    RESNET_CHECK(it->second.kind == Symbol::Kind::activation,
                 file_ << ": the graph output '" << name << "' is a constant");
    RESNET_CHECK(!it->second.has_pending_pad(),
                 file_ << ": the graph output '" << name << "' comes from a Pad on H and W, "
                       << "which is supported only right before a Conv or an AveragePool");
    const int v = it->second.value;
    if (i == 0)
      g_.output = v;
    else
      g_.extra_outputs.push_back(v);
    g_.values[v].name = name;
  }
}

void Importer::final_checks() {
  try {
    g_.validate();
  } catch (const Error& e) {
    RESNET_FAIL(file_ << ": " << e.what());
  }
  // The declared output shapes, where concrete, must be what the graph computes, and
  // the declared element types what it writes.
  if (shapes_) {
    g_.infer_shapes(input_shape_);
    const std::vector<int> outputs = g_.outputs();
    for (size_t k = 0; k < outputs.size(); ++k) {
      const infer::Value& value = g_.values[outputs[k]];
      const Shape& got = value.shape;
      const onnx::ValueInfoProto& out = proto_.output(static_cast<int>(k));
      if (!out.type().has_tensor_type()) continue;
      const int elem = out.type().tensor_type().elem_type();
      const int want = value.type == infer::ElementType::i64 ? onnx::TensorProto_DataType_INT64
                       : value.type == infer::ElementType::boolean
                           ? onnx::TensorProto_DataType_BOOL
                           : onnx::TensorProto_DataType_FLOAT;
      // (A float output may be declared as the integers a quantized file stores.)
      RESNET_CHECK(value.type == infer::ElementType::f32 ||
                       elem == onnx::TensorProto_DataType_UNDEFINED || elem == want,
                   file_ << ": the graph output '" << out.name() << "' is declared "
                         << onnx_dtype_name(elem) << ", but the graph computes "
                         << onnx_dtype_name(want));
      if (!out.type().tensor_type().has_shape()) continue;
      const auto& dims = out.type().tensor_type().shape().dim();
      bool fits = dims.size() == static_cast<int>(got.size());
      for (int i = 1; fits && i < dims.size(); ++i)
        fits = !dims[i].has_dim_value() || dims[i].dim_value() == got[i];
      std::string declared = "[";
      for (int i = 0; i < dims.size(); ++i)
        declared += (i ? ", " : "") + (dims[i].has_dim_value() ? std::to_string(dims[i].dim_value())
                                                               : dims[i].dim_param());
      declared += "]";
      RESNET_CHECK(fits, file_ << ": the graph output '" << out.name() << "' is declared "
                               << declared << ", but the graph computes " << shape_str(got)
                               << " for input " << shape_str(input_shape_));
    }
  }
  // Shapes belong to one input size; the caller infers them for its own. The input keeps
  // its declared shape, symbolic dims unknown: loaders read the channel count from it.
  for (infer::Value& v : g_.values) v.shape.clear();
  g_.values[0].shape = declared_input_;
  g_.input_nhwc = input_is_nhwc_;
}

}  // namespace resnet::io::detail
