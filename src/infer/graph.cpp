#include "resnet/infer/graph.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "resnet/core/error.h"
#include "resnet/infer/op_table.h"

namespace resnet::infer {

int64_t window_out_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad_before,
                        int64_t pad_after, int64_t dilation, bool ceil_mode) {
  const int64_t span = dilation * (kernel - 1) + 1;
  const int64_t room = in + pad_before + pad_after - span;
  if (room < 0) return 0;
  int64_t out = (ceil_mode ? (room + stride - 1) / stride : room / stride) + 1;
  // PyTorch and ONNX: with ceil_mode, the last window must start inside the input or the
  // left padding.
  if (ceil_mode && (out - 1) * stride >= in + pad_before) --out;
  return out;
}

DType storage_dtype(ElementType type) {
  switch (type) {
    case ElementType::i64:
      return DType::i64;
    case ElementType::boolean:
      return DType::u8;
    case ElementType::f32:
      break;
  }
  return DType::f32;
}

const char* element_type_name(ElementType type) {
  switch (type) {
    case ElementType::i64:
      return "i64";
    case ElementType::boolean:
      return "bool";
    case ElementType::f32:
      break;
  }
  return "f32";
}

int Graph::add_value(std::string name) {
  Value v;
  v.name = std::move(name);
  values.push_back(std::move(v));
  return static_cast<int>(values.size()) - 1;
}

int Graph::add_node(Node node, std::string output_name) {
  node.output = add_value(output_name.empty() ? node.name : std::move(output_name));
  nodes.push_back(std::move(node));
  return nodes.back().output;
}

void Graph::validate() const {
  RESNET_CHECK(num_inputs >= 1 && static_cast<size_t>(num_inputs) <= values.size(),
               "graph: expected at least one input value, found " << values.size() << " values");
  std::vector<bool> produced(values.size(), false);
  for (int i = 0; i < num_inputs; ++i) produced[i] = true;
  for (const Node& n : nodes) {
    RESNET_CHECK(static_cast<size_t>(n.op) < kOpCount,
                 "graph: node '" << n.name << "' has no op (" << static_cast<int>(n.op) << ")");
    const OpInfo& op = op_info(n.op);
    RESNET_CHECK(n.inputs.size() == op.inputs, describe(n)
                                                   << ": expected " << op.inputs
                                                   << " input(s), found " << n.inputs.size());
    for (int in : n.inputs) {
      RESNET_CHECK(in >= 0 && static_cast<size_t>(in) < values.size(),
                   describe(n) << ": input id " << in << " is not a value of the graph");
      RESNET_CHECK(produced[in], describe(n) << ": reads '" << values[in].name
                                             << "' before any node produces it");
    }
    const size_t extra_max = extra_outputs_of(n, {}, {}).size();
    RESNET_CHECK(n.extra_outputs.size() <= extra_max,
                 describe(n) << ": expected at most " << extra_max + 1 << " output(s), found "
                             << n.extra_outputs.size() + 1);
    std::vector<int> outs = {n.output};
    outs.insert(outs.end(), n.extra_outputs.begin(), n.extra_outputs.end());
    for (int out : outs) {
      RESNET_CHECK(out >= 0 && static_cast<size_t>(out) < values.size(),
                   describe(n) << ": output id " << out << " is not a value of the graph");
      RESNET_CHECK(!produced[out],
                   describe(n) << ": writes '" << values[out].name << "', already produced");
      produced[out] = true;
    }
    const size_t lo = op.min_params, hi = op.max_params;
    RESNET_CHECK(n.params.size() >= lo && n.params.size() <= hi,
                 describe(n) << ": expected " << lo << (hi != lo ? " to " + std::to_string(hi) : "")
                             << " parameter(s), found " << n.params.size());
    if (op.check) op.check(n);
  }
  RESNET_CHECK(output >= 0 && static_cast<size_t>(output) < values.size() && produced[output],
               "graph: the output is not produced by any node");
  for (size_t i = 0; i < extra_outputs.size(); ++i) {
    const int v = extra_outputs[i];
    RESNET_CHECK(v >= 0 && static_cast<size_t>(v) < values.size() && produced[v],
                 "graph: output " << i + 1 << " is not produced by any node");
  }
}

std::vector<int> Graph::outputs() const {
  std::vector<int> all = {output};
  all.insert(all.end(), extra_outputs.begin(), extra_outputs.end());
  return all;
}

void Graph::infer_shapes(const Shape& input_shape) {
  validate();
  RESNET_CHECK(!input_shape.empty() && input_shape.size() <= kMaxRank,
               "graph: expected an input of 1 to " << kMaxRank << " dimensions, found "
                                                   << shape_str(input_shape));
  for (int64_t d : input_shape)
    RESNET_CHECK(d >= 0 || d == kUnknownDim,
                 "graph: expected an input shape of sizes, found " << shape_str(input_shape));
  for (auto& v : values) {
    v.shape.clear();
    v.type = ElementType::f32;
  }
  values[0].shape = input_shape;
  std::vector<const Shape*> inputs;
  for (const Node& n : nodes) {
    inputs.clear();
    for (int in : n.inputs) inputs.push_back(&values[in].shape);
    values[n.output].shape = op_info(n.op).shape(n, inputs);
    if (n.extra_outputs.empty()) continue;
    const std::vector<ExtraOutput> extra =
        extra_outputs_of(n, values[n.inputs[0]].shape, values[n.output].shape);
    for (size_t i = 0; i < n.extra_outputs.size(); ++i) {
      values[n.extra_outputs[i]].shape = extra[i].shape;
      values[n.extra_outputs[i]].type = extra[i].type;
    }
  }
}

int64_t count_macs(const Graph& graph) {
  int64_t macs = 0;
  for (const Node& n : graph.nodes) {
    if (n.op != OpKind::conv && n.op != OpKind::linear) continue;
    const Shape& y = graph.values[n.output].shape;
    RESNET_CHECK(!y.empty(), "count_macs: shapes are not inferred");
    const Tensor& w = n.params[0].value;
    macs += shape_numel(y) * (w.numel() / w.dim(0));
  }
  return macs;
}

std::vector<const Param*> Graph::all_params() const {
  std::vector<const Param*> out;
  for (const Node& n : nodes)
    for (const Param& p : n.params) out.push_back(&p);
  return out;
}

float Quantization::max_abs() const {
  if (zero_point == qmin) return highest();  // [0, (qmax - qmin) * scale]: u8 after a ReLU
  if (centered()) return static_cast<float>(qmax - zero_point) * scale;
  return std::max(std::abs(lowest()), std::abs(highest()));
}

bool outputs_probabilities(const Graph& graph) {
  for (const Node& n : graph.nodes)
    if (n.output == graph.output) return n.op == OpKind::softmax;
  return false;
}

}  // namespace resnet::infer
