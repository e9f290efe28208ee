#include "resnet/infer/quantized_export.h"

#include "plan.h"
#include "resnet/backend/fused_conv.h"

namespace resnet::infer {

namespace {

// Whether the value `node` writes cannot be negative, given which of its inputs cannot.
bool writes_non_negative(const Node& n, const std::vector<bool>& non_negative) {
  switch (n.op) {
    case OpKind::relu:
      return true;
    case OpKind::max_pool:
    case OpKind::avg_pool:
    case OpKind::global_avg_pool:
    case OpKind::flatten:
    case OpKind::subsample:
    case OpKind::pad_channels:
      return non_negative[n.inputs[0]];
    default:
      return false;
  }
}

}  // namespace

Graph quantized_export_graph(const Graph& graph, const Calibration& calibration) {
  // The compiler's own BN folding, on a plan without the other passes: one step per
  // node left, each back into a node.
  detail::Plan plan = detail::plan_from_graph(graph);
  detail::fold_batch_norm(plan);
  Graph out;
  std::vector<int> id(plan.values.size(), -1);
  id[0] = out.add_value(plan.values[0].name);
  out.values[0].shape = graph.values[0].shape;
  for (const detail::Step& s : plan.steps) {
    Node n;
    n.op = s.source_op;
    n.name = s.name;
    for (int in : s.inputs) n.inputs.push_back(id[in]);
    n.window = s.window;
    n.pads = s.pads;
    if (s.kind == detail::Step::Kind::conv || s.kind == detail::Step::Kind::linear) {
      n.params.push_back({s.name + ".weight", s.weight});
      n.params.push_back({s.name + ".bias", s.bias});
    }
    if (s.kind == detail::Step::Kind::conv) n.weight_steps = backend::int8_weight_steps(s.weight);
    id[s.output] = out.add_node(std::move(n), plan.values[s.output].name);
  }
  out.output = id[plan.output];

  std::vector<bool> non_negative(out.values.size(), false);
  for (const Node& n : out.nodes) non_negative[n.output] = writes_non_negative(n, non_negative);
  for (size_t v = 0; v < out.values.size(); ++v) {
    auto range = calibration.max_abs.find(out.values[v].name);
    if (range == calibration.max_abs.end() || static_cast<int>(v) == out.output) continue;
    const float max = range->second > 0 ? range->second : 1.f;
    Quantization q;
    if (non_negative[v]) {
      q.scale = max / 255.f, q.qmin = 0, q.qmax = 255;
    } else {
      q.scale = max / 127.f;
    }
    out.values[v].quant = q;
  }
  return out;
}

}  // namespace resnet::infer
