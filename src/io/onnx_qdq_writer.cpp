#include "onnx_qdq_writer.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <set>

#include "resnet/core/error.h"

namespace resnet::io::detail {

namespace {

using infer::Quantization;

// Every name the graph defines, and fresh ones beside them: an imported file may already
// use names such as "x_quantized" for values of its own.
class FreshNames {
 public:
  explicit FreshNames(const onnx::GraphProto& g) {
    for (const onnx::ValueInfoProto& v : g.input()) used_.insert(v.name());
    for (const onnx::TensorProto& t : g.initializer()) used_.insert(t.name());
    for (const onnx::NodeProto& n : g.node())
      for (const std::string& o : n.output()) used_.insert(o);
  }
  std::string operator()(const std::string& base) {
    std::string name = base;
    for (int i = 1; !used_.insert(name).second; ++i) name = base + "_" + std::to_string(i);
    return name;
  }

 private:
  std::set<std::string> used_;
};

onnx::TensorProto& add_initializer(onnx::GraphProto& g, const std::string& name,
                                   onnx::TensorProto_DataType type,
                                   const std::vector<int64_t>& dims) {
  onnx::TensorProto& t = *g.add_initializer();
  t.set_name(name);
  t.set_data_type(type);
  for (int64_t d : dims) t.add_dims(d);
  return t;
}

// Scale and zero point initializers of `q`, named after `base`; returns their names.
std::vector<std::string> add_scalar_grid(onnx::GraphProto& g, FreshNames& fresh,
                                         const std::string& base, const Quantization& q) {
  const std::vector<std::string> names{fresh(base + "_scale"), fresh(base + "_zero_point")};
  add_initializer(g, names[0], onnx::TensorProto::FLOAT, {}).add_float_data(q.scale);
  add_initializer(g, names[1], q.qmin == 0 ? onnx::TensorProto::UINT8 : onnx::TensorProto::INT8, {})
      .add_int32_data(q.zero_point);
  return names;
}

onnx::NodeProto make_node(const std::string& op, const std::vector<std::string>& inputs,
                          const std::string& output, int64_t axis = -1) {
  onnx::NodeProto n;
  n.set_op_type(op);
  n.set_name(output + "_" + op);
  for (const std::string& i : inputs) n.add_input(i);
  n.add_output(output);
  if (axis >= 0) {
    onnx::AttributeProto& a = *n.add_attribute();
    a.set_name("axis"), a.set_type(onnx::AttributeProto::INT), a.set_i(axis);
  }
  return n;
}

// The float values of initializer `t` (written by write_onnx as FLOAT raw_data).
std::vector<float> floats_of(const onnx::TensorProto& t) {
  std::vector<float> v(t.raw_data().size() / sizeof(float));
  std::memcpy(v.data(), t.raw_data().data(), v.size() * sizeof(float));
  return v;
}

// Replaces FLOAT initializer `t` by integers on `steps` per output channel (axis 0) named
// NAME_quantized, NAME_scale and NAME_zero_point; returns the DequantizeLinear that
// gives NAME its (rounded) values back.
onnx::NodeProto quantize_initializer(onnx::GraphProto& g, FreshNames& fresh, onnx::TensorProto& t,
                                     const std::vector<float>& steps, bool int32) {
  const std::string name = t.name();
  const std::string q_name = fresh(name + "_quantized"), s_name = fresh(name + "_scale"),
                    z_name = fresh(name + "_zero_point");
  const std::vector<float> values = floats_of(t);
  const int64_t channels = static_cast<int64_t>(steps.size());
  const int64_t per = static_cast<int64_t>(values.size()) / channels;
  const double lo = int32 ? std::numeric_limits<int32_t>::min() : -127;
  const double hi = int32 ? std::numeric_limits<int32_t>::max() : 127;
  std::vector<int64_t> dims(t.dims().begin(), t.dims().end());
  // raw_data, little-endian: int32_data would spend up to ten bytes on a negative INT8.
  std::string bytes;
  auto append = [&](int32_t v) {
    if (!int32) return bytes.push_back(static_cast<char>(static_cast<int8_t>(v)));
    for (int b = 0; b < 4; ++b)
      bytes.push_back(static_cast<char>((static_cast<uint32_t>(v) >> (8 * b)) & 0xff));
  };
  for (int64_t o = 0; o < channels; ++o)
    for (int64_t i = 0; i < per; ++i)
      append(static_cast<int32_t>(
          std::clamp(std::nearbyint(static_cast<double>(values[o * per + i]) / steps[o]), lo, hi)));
  add_initializer(g, q_name, int32 ? onnx::TensorProto::INT32 : onnx::TensorProto::INT8, dims)
      .set_raw_data(std::move(bytes));
  onnx::TensorProto& scale = add_initializer(g, s_name, onnx::TensorProto::FLOAT, {channels});
  for (float s : steps) scale.add_float_data(s);
  onnx::TensorProto& zero = add_initializer(
      g, z_name, int32 ? onnx::TensorProto::INT32 : onnx::TensorProto::INT8, {channels});
  for (int64_t o = 0; o < channels; ++o) zero.add_int32_data(0);
  return make_node("DequantizeLinear", {q_name, s_name, z_name}, name, 0);
}

}  // namespace

void rewrite_as_qdq(onnx::GraphProto& graph, const QdqAnnotations& a) {
  std::map<std::string, int> readers;
  for (const onnx::NodeProto& n : graph.node())
    for (const std::string& i : n.input()) ++readers[i];
  for (const onnx::ValueInfoProto& o : graph.output()) ++readers[o.name()];

  // Dropped Relus: their input is quantized on their output's grid, the DequantizeLinear
  // writing the Relu's output name, so its readers need no renaming.
  std::map<std::string, std::string> dropped;  // Relu input -> Relu output
  std::set<const onnx::NodeProto*> skip;
  for (const onnx::NodeProto& n : graph.node()) {
    if (n.op_type() != "Relu") continue;
    auto grid = a.values.find(n.output(0));
    if (grid == a.values.end() || grid->second.zero_point != grid->second.qmin) continue;
    if (readers[n.input(0)] != 1 || n.input(0) == graph.input(0).name()) continue;
    dropped[n.input(0)] = n.output(0);
    skip.insert(&n);
  }

  FreshNames fresh(graph);
  std::vector<onnx::NodeProto> nodes;
  std::map<std::string, std::string> renamed;  // a quantized value -> its DequantizeLinear
  // Q -> DQ after the producer of `value`.
  auto quantize_value = [&](const std::string& value) {
    auto d = dropped.find(value);
    const std::string grid_of = d != dropped.end() ? d->second : value;
    auto grid = a.values.find(grid_of);
    if (grid == a.values.end()) return;
    const std::string out = d != dropped.end() ? d->second : fresh(value + "_dequantized");
    const std::vector<std::string> g = add_scalar_grid(graph, fresh, grid_of, grid->second);
    const std::string integers = fresh(value + "_quantized");
    nodes.push_back(make_node("QuantizeLinear", {value, g[0], g[1]}, integers));
    nodes.push_back(make_node("DequantizeLinear", {integers, g[0], g[1]}, out));
    if (d == dropped.end()) renamed[value] = out;
  };

  // Weights, and the biases of convolutions whose input is quantized.
  std::map<std::string, onnx::TensorProto*> inits;
  for (onnx::TensorProto& t : *graph.mutable_initializer()) inits[t.name()] = &t;
  std::set<std::string> replaced;
  for (const onnx::NodeProto& n : graph.node()) {
    if (n.op_type() != "Conv" || n.input_size() < 2) continue;
    auto steps = a.weight_steps.find(n.input(1));
    if (steps == a.weight_steps.end() || replaced.count(n.input(1))) continue;
    nodes.push_back(
        quantize_initializer(graph, fresh, *inits.at(n.input(1)), steps->second, false));
    replaced.insert(n.input(1));
    auto in_grid = a.values.find(dropped.count(n.input(0)) ? dropped[n.input(0)] : n.input(0));
    if (n.input_size() < 3 || in_grid == a.values.end() || replaced.count(n.input(2))) continue;
    std::vector<float> bias_steps = steps->second;
    for (float& s : bias_steps) s *= in_grid->second.scale;
    nodes.push_back(quantize_initializer(graph, fresh, *inits.at(n.input(2)), bias_steps, true));
    replaced.insert(n.input(2));
  }
  quantize_value(graph.input(0).name());
  for (const onnx::NodeProto& n : graph.node()) {
    if (skip.count(&n)) continue;
    onnx::NodeProto copy = n;
    for (int i = 0; i < copy.input_size(); ++i) {
      auto r = renamed.find(copy.input(i));
      if (r != renamed.end()) copy.set_input(i, r->second);
    }
    nodes.push_back(std::move(copy));
    if (n.output(0) != graph.output(0).name()) quantize_value(n.output(0));
  }

  // The float initializers now written as integers go; the nodes are the new list.
  auto* all = graph.mutable_initializer();
  for (int i = all->size() - 1; i >= 0; --i)
    if (replaced.count(all->Get(i).name())) all->DeleteSubrange(i, 1);
  graph.clear_node();
  for (onnx::NodeProto& n : nodes) *graph.add_node() = std::move(n);
}

}  // namespace resnet::io::detail
