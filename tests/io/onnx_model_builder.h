#pragma once
// Helpers for the ONNX import tests: build small models with the protobuf classes, and
// write an inference graph as ONNX the way our own export does (one node per op, Slice
// with steps for subsample, Pad for channel padding), so that the import can be checked
// on whole networks without a dependency on the exporter.

#include <onnx/onnx_pb.h>

#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "io_test_util.h"
#include "resnet/infer/graph.h"
#include "resnet/tensor/tensor.h"

namespace resnet::testing {

// A model at `opset` with one FLOAT input "input" of `input_dims` (a negative dim is
// symbolic) and one output named `output`.
class OnnxBuilder {
 public:
  explicit OnnxBuilder(int64_t opset = 13, const Shape& input_dims = {1, 3, 8, 8},
                       const std::string& output = "output") {
    model.set_ir_version(7);
    model.set_producer_name("resnet tests");
    auto* id = model.add_opset_import();
    id->set_domain("");
    id->set_version(opset);
    auto* in = graph().add_input();
    in->set_name("input");
    set_type(*in, input_dims);
    graph().add_output()->set_name(output);
  }

  onnx::GraphProto& graph() { return *model.mutable_graph(); }

  onnx::NodeProto& node(const std::string& op, const std::vector<std::string>& inputs,
                        const std::vector<std::string>& outputs, const std::string& name = "") {
    auto* n = graph().add_node();
    n->set_op_type(op);
    n->set_name(name.empty() ? op + "_" + std::to_string(graph().node_size()) : name);
    for (const auto& i : inputs) n->add_input(i);
    for (const auto& o : outputs) n->add_output(o);
    return *n;
  }

  // An initializer holding `t` (f32 or i64) as raw_data.
  onnx::TensorProto& initializer(const std::string& name, const Tensor& t) {
    auto* p = graph().add_initializer();
    p->set_name(name);
    for (int64_t d : t.shape()) p->add_dims(d);
    p->set_data_type(t.dtype() == DType::i64 ? onnx::TensorProto_DataType_INT64
                                             : onnx::TensorProto_DataType_FLOAT);
    p->set_raw_data(t.raw(), t.nbytes());
    return *p;
  }

  // An INT8, UINT8 or INT32 initializer (quantized weights, zero points, biases), in
  // int32_data as ONNX keeps those types outside raw_data.
  onnx::TensorProto& integers(const std::string& name, onnx::TensorProto_DataType type,
                              const Shape& shape, const std::vector<int32_t>& values) {
    auto* p = graph().add_initializer();
    p->set_name(name);
    for (int64_t d : shape) p->add_dims(d);
    p->set_data_type(type);
    for (int32_t v : values) p->add_int32_data(v);
    return *p;
  }

  onnx::TensorProto& ints(const std::string& name, const std::vector<int64_t>& values) {
    Tensor t({static_cast<int64_t>(values.size())}, DType::i64);
    std::memcpy(t.raw(), values.data(), values.size() * sizeof(int64_t));
    return initializer(name, t);
  }

  static void set_type(onnx::ValueInfoProto& v, const Shape& dims) {
    auto* tt = v.mutable_type()->mutable_tensor_type();
    tt->set_elem_type(onnx::TensorProto_DataType_FLOAT);
    auto* shape = tt->mutable_shape();
    for (int64_t d : dims) {
      auto* dim = shape->add_dim();
      if (d < 0) {
        std::string name = "dim";  // appended, not "dim" + ...: GCC 12 warns -Wrestrict there
        name += std::to_string(shape->dim_size());
        dim->set_dim_param(name);
      } else {
        dim->set_dim_value(d);
      }
    }
  }

  std::string save(const std::string& path) const { return save_model(model, path); }

  static std::string save_model(const onnx::ModelProto& m, const std::string& path) {
    write_bytes(path, m.SerializeAsString());
    return path;
  }

  onnx::ModelProto model;
};

inline void set_ints(onnx::NodeProto& n, const std::string& name,
                     const std::vector<int64_t>& values) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto_AttributeType_INTS);
  for (int64_t v : values) a->add_ints(v);
}

inline void set_int(onnx::NodeProto& n, const std::string& name, int64_t value) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto_AttributeType_INT);
  a->set_i(value);
}

inline void set_float(onnx::NodeProto& n, const std::string& name, float value) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto_AttributeType_FLOAT);
  a->set_f(value);
}

inline void set_string(onnx::NodeProto& n, const std::string& name, const std::string& value) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto_AttributeType_STRING);
  a->set_s(value);
}

// `g` as an ONNX model at opset 13 with input "input" of `input_dims`: parameters become
// initializers under their names, values keep their names (the output is "output").
inline onnx::ModelProto graph_to_onnx(const infer::Graph& g, const Shape& input_dims) {
  using infer::OpKind;
  OnnxBuilder b(13, input_dims, g.values[g.output].name);
  auto value = [&](int id) { return id == 0 ? std::string("input") : g.values[id].name; };
  for (const infer::Node& n : g.nodes) {
    std::vector<std::string> inputs;
    for (int id : n.inputs) inputs.push_back(value(id));
    for (const infer::Param& p : n.params) {
      inputs.push_back(p.name);
      b.initializer(p.name, p.value);
    }
    const infer::Window& w = n.window;
    const std::string out = value(n.output);
    switch (n.op) {
      case OpKind::conv: {
        auto& node = b.node("Conv", inputs, {out}, n.name);
        set_ints(node, "kernel_shape", {w.kernel_h, w.kernel_w});
        set_ints(node, "strides", {w.stride_h, w.stride_w});
        set_ints(node, "pads", {w.pad_t, w.pad_l, w.pad_b, w.pad_r});
        set_ints(node, "dilations", {w.dilation_h, w.dilation_w});
        set_int(node, "group", w.groups);
        break;
      }
      case OpKind::batch_norm:
        set_float(b.node("BatchNormalization", inputs, {out}, n.name), "epsilon",
                  static_cast<float>(n.eps));
        break;
      case OpKind::max_pool:
      case OpKind::avg_pool: {
        auto& node =
            b.node(n.op == OpKind::max_pool ? "MaxPool" : "AveragePool", inputs, {out}, n.name);
        set_ints(node, "kernel_shape", {w.kernel_h, w.kernel_w});
        set_ints(node, "strides", {w.stride_h, w.stride_w});
        set_ints(node, "pads", {w.pad_t, w.pad_l, w.pad_b, w.pad_r});
        set_int(node, "ceil_mode", w.ceil_mode);
        if (n.op == OpKind::avg_pool) set_int(node, "count_include_pad", w.count_include_pad);
        break;
      }
      case OpKind::linear:
        set_int(b.node("Gemm", inputs, {out}, n.name), "transB", 1);
        break;
      case OpKind::subsample: {
        const int64_t end = std::numeric_limits<int64_t>::max();
        b.ints(n.name + ".starts", {0, 0});
        b.ints(n.name + ".ends", {end, end});
        b.ints(n.name + ".axes", {2, 3});
        b.ints(n.name + ".steps", {w.stride_h, w.stride_w});
        b.node(
            "Slice",
            {inputs[0], n.name + ".starts", n.name + ".ends", n.name + ".axes", n.name + ".steps"},
            {out}, n.name);
        break;
      }
      case OpKind::pad_channels:
        b.ints(n.name + ".pads", {0, n.pads[0], 0, 0, 0, n.pads[1], 0, 0});
        b.node("Pad", {inputs[0], n.name + ".pads"}, {out}, n.name);
        break;
      default:  // relu, add, global_avg_pool, flatten: no attributes
        b.node(infer::op_name(n.op), inputs, {out}, n.name);
        break;
    }
  }
  return b.model;
}

}  // namespace resnet::testing
