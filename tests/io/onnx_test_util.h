#pragma once
// Reading an exported ONNX file back with protobuf, as any other consumer would, and the
// facts the export tests compare: op counts, float initializers, attributes, and the
// state_dict an export must reproduce.

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "resnet/nn/module.h"

namespace resnet::testing {

inline onnx::ModelProto read_onnx_proto(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  onnx::ModelProto model;
  EXPECT_FALSE(bytes.empty()) << path;
  EXPECT_TRUE(model.ParseFromString(bytes)) << path << " is not an ONNX ModelProto";
  return model;
}

inline std::map<std::string, int> op_counts(const onnx::ModelProto& model) {
  std::map<std::string, int> counts;
  for (const auto& n : model.graph().node()) ++counts[n.op_type()];
  return counts;
}

inline const onnx::NodeProto* find_node(const onnx::ModelProto& model, const std::string& name) {
  for (const auto& n : model.graph().node())
    if (n.name() == name) return &n;
  return nullptr;
}

inline const onnx::AttributeProto* find_attr(const onnx::NodeProto& node, const std::string& name) {
  for (const auto& a : node.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

inline std::vector<int64_t> attr_ints(const onnx::NodeProto& node, const std::string& name) {
  const auto* a = find_attr(node, name);
  if (!a) return {};
  return {a->ints().begin(), a->ints().end()};
}

inline int64_t attr_int(const onnx::NodeProto& node, const std::string& name) {
  const auto* a = find_attr(node, name);
  return a ? a->i() : -12345;
}

inline const onnx::TensorProto* find_initializer(const onnx::ModelProto& model,
                                                 const std::string& name) {
  for (const auto& t : model.graph().initializer())
    if (t.name() == name) return &t;
  return nullptr;
}

inline std::vector<int64_t> int64_values(const onnx::TensorProto& t) {
  std::vector<int64_t> v(t.raw_data().size() / 8);
  std::memcpy(v.data(), t.raw_data().data(), v.size() * 8);
  return v;
}

// (name, shape) of every FLOAT initializer, in file order.
inline std::vector<std::pair<std::string, Shape>> float_initializers(
    const onnx::ModelProto& model) {
  std::vector<std::pair<std::string, Shape>> out;
  for (const auto& t : model.graph().initializer())
    if (t.data_type() == onnx::TensorProto::FLOAT)
      out.emplace_back(t.name(), Shape(t.dims().begin(), t.dims().end()));
  return out;
}

// (name, shape) of the state_dict without num_batches_tracked, which inference ignores.
inline std::vector<std::pair<std::string, Shape>> inference_state(nn::Module& model) {
  std::vector<std::pair<std::string, Shape>> out;
  for (auto& [name, t] : model.state_dict())
    if (name.find("num_batches_tracked") == std::string::npos) out.emplace_back(name, t->shape());
  return out;
}

// True when the initializer holds exactly the tensor's floats.
inline bool same_floats(const onnx::TensorProto& t, const Tensor& value) {
  return t.raw_data().size() == static_cast<size_t>(value.numel()) * sizeof(float) &&
         std::memcmp(t.raw_data().data(), value.raw(), t.raw_data().size()) == 0;
}

// The dims of a graph input or output: a number, a symbol, or "?" for unknown.
inline std::vector<std::string> declared_dims(const onnx::ValueInfoProto& v) {
  std::vector<std::string> out;
  for (const auto& d : v.type().tensor_type().shape().dim()) {
    if (d.has_dim_value())
      out.push_back(std::to_string(d.dim_value()));
    else if (d.has_dim_param())
      out.push_back(d.dim_param());
    else
      out.push_back("?");
  }
  return out;
}

// Every node input is the graph input, an initializer, or an earlier node's output, and
// every name is defined once: what ONNX requires of a graph.
inline void expect_well_formed(const onnx::ModelProto& model) {
  const auto& g = model.graph();
  std::set<std::string> defined;
  for (const auto& v : g.input()) EXPECT_TRUE(defined.insert(v.name()).second) << v.name();
  for (const auto& t : g.initializer())
    EXPECT_TRUE(defined.insert(t.name()).second) << "initializer defined twice: " << t.name();
  for (const auto& n : g.node()) {
    for (const auto& in : n.input())
      EXPECT_TRUE(defined.count(in)) << "node " << n.name() << " reads undefined '" << in << "'";
    for (const auto& out : n.output())
      EXPECT_TRUE(defined.insert(out).second) << "value defined twice: " << out;
  }
  for (const auto& v : g.output()) EXPECT_TRUE(defined.count(v.name())) << v.name();
}

}  // namespace resnet::testing
