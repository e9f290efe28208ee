// The compiler's passes. Each works on the Plan's steps and keeps them in an order where
// every input is produced before it is read. A fusion only happens when the producer's
// output has exactly one reader, so no other step can observe the intermediate value.
#include <array>
#include <cmath>

#include "plan.h"
#include "resnet/core/error.h"
#include "resnet/infer/op_table.h"

namespace resnet::infer::detail {

namespace {

Tensor zeros_bias(int64_t n) {
  return Tensor({n});
}

// conv, linear: the weight, and the bias or zeros.
void load_weight_and_bias(const Node& n, Step& s) {
  s.weight = n.params[0].value;
  s.weight_steps = n.weight_steps;
  s.bias = n.params.size() > 1 ? n.params[1].value : zeros_bias(n.params[0].value.dim(0));
}

// Held as scale and shift until fold_batch_norm decides where it goes: weight holds
// gamma / sqrt(var + eps) and bias beta - mean * that, computed in double.
void load_scale_and_shift(const Node& n, Step& s) {
  const int64_t c = n.params[0].value.dim(0);
  Tensor scale({c}), shift({c});
  const float* gamma = n.params[0].value.f32();
  const float* beta = n.params[1].value.f32();
  const float* mean = n.params[2].value.f32();
  const float* var = n.params[3].value.f32();
  for (int64_t i = 0; i < c; ++i) {
    const double k = gamma[i] / std::sqrt(static_cast<double>(var[i]) + n.eps);
    scale.f32()[i] = static_cast<float>(k);
    shift.f32()[i] = static_cast<float>(beta[i] - mean[i] * k);
  }
  s.weight = scale;
  s.bias = shift;
}

void keep_node(const Node& n, Step& s) {
  s.node = n;
}

// How each OpKind becomes a step, in enum order: the step kind it runs as, and what it
// loads from its parameters (nullptr: none).
struct OpPlan {
  OpKind op;
  Step::Kind kind;
  void (*load_params)(const Node& n, Step& s);
};
constexpr std::array<OpPlan, kOpCount> kOpPlans = {{
    {OpKind::conv, Step::Kind::conv, load_weight_and_bias},
    {OpKind::batch_norm, Step::Kind::conv, load_scale_and_shift},
    {OpKind::relu, Step::Kind::relu, nullptr},
    {OpKind::add, Step::Kind::add, nullptr},
    {OpKind::max_pool, Step::Kind::pool, nullptr},
    {OpKind::avg_pool, Step::Kind::pool, nullptr},
    {OpKind::global_avg_pool, Step::Kind::pool, nullptr},
    {OpKind::flatten, Step::Kind::flatten, nullptr},
    {OpKind::linear, Step::Kind::linear, load_weight_and_bias},
    {OpKind::subsample, Step::Kind::subsample, nullptr},
    {OpKind::pad_channels, Step::Kind::pad_channels, nullptr},
    {OpKind::softmax, Step::Kind::tensor_op, keep_node},
    {OpKind::add_constant, Step::Kind::tensor_op, keep_node},
    {OpKind::sub_constant, Step::Kind::tensor_op, keep_node},
    {OpKind::mul_constant, Step::Kind::tensor_op, keep_node},
    {OpKind::div_constant, Step::Kind::tensor_op, keep_node},
    {OpKind::clip, Step::Kind::tensor_op, keep_node},
    {OpKind::reduce_mean, Step::Kind::tensor_op, keep_node},
    {OpKind::reshape, Step::Kind::tensor_op, keep_node},
    {OpKind::transpose, Step::Kind::tensor_op, keep_node},
    {OpKind::matmul, Step::Kind::tensor_op, keep_node},
    {OpKind::dropout, Step::Kind::tensor_op, keep_node},
}};
static_assert(covers_every_op(kOpPlans), "the compiler needs a plan entry per OpKind");

std::vector<int> reader_counts(const Plan& plan) {
  std::vector<int> n(plan.values.size(), 0);
  for (const Step& s : plan.steps)
    for (int v : s.inputs) ++n[v];
  ++n[plan.output];  // the graph's outputs are read by the caller
  for (int v : plan.extra_outputs) ++n[v];
  return n;
}

// Index of the step producing value v, or -1 for a graph input.
int producer_of(const Plan& plan, int v) {
  for (size_t i = 0; i < plan.steps.size(); ++i)
    if (plan.steps[i].output == v) return static_cast<int>(i);
  return -1;
}

}  // namespace

Plan plan_from_graph(const Graph& graph) {
  Plan plan;
  plan.values = graph.values;
  plan.output = graph.output;
  plan.extra_outputs = graph.extra_outputs;
  for (const Node& n : graph.nodes) {
    const bool loop = runs_as_loop(n);
    const OpPlan& plan_entry = kOpPlans[static_cast<size_t>(n.op)];
    Step s;
    s.kind = loop ? Step::Kind::tensor_op : plan_entry.kind;
    s.source_op = n.op;
    s.name = n.name;
    s.inputs = n.inputs;
    s.output = n.output;
    s.extra_outputs = n.extra_outputs;
    s.own_output = n.output;
    s.window = n.window;
    s.pads = n.pads;
    if (loop)
      keep_node(n, s);
    else if (plan_entry.load_params)
      plan_entry.load_params(n, s);
    plan.steps.push_back(std::move(s));
  }
  return plan;
}

void fold_batch_norm(Plan& plan) {
  std::vector<int> readers = reader_counts(plan);
  std::vector<Step> out;
  for (Step& s : plan.steps) {
    if (s.source_op != OpKind::batch_norm || s.kind != Step::Kind::conv) {
      out.push_back(std::move(s));
      continue;
    }
    const int64_t c = s.weight.dim(0);
    Step* conv = nullptr;
    for (Step& prev : out)
      if (prev.output == s.inputs[0] && prev.source_op == OpKind::conv && !prev.relu &&
          !prev.add_residual && readers[s.inputs[0]] == 1)
        conv = &prev;
    if (conv != nullptr) {
      // w' = w * scale[o], b' = b * scale[o] + shift[o]. The folded tensors are new, so
      // the graph's own parameters stay untouched.
      const Tensor& w = conv->weight;
      const int64_t oc = w.dim(0), per_oc = w.numel() / oc;
      Tensor folded_w(w.shape()), folded_b({oc});
      const float* src = w.f32();
      const float* scale = s.weight.f32();
      const float* shift = s.bias.f32();
      const float* b = conv->bias.f32();
      for (int64_t o = 0; o < oc; ++o) {
        for (int64_t i = 0; i < per_oc; ++i)
          folded_w.f32()[o * per_oc + i] =
              static_cast<float>(static_cast<double>(src[o * per_oc + i]) * scale[o]);
        folded_b.f32()[o] = static_cast<float>(static_cast<double>(b[o]) * scale[o] + shift[o]);
      }
      conv->weight = folded_w;
      conv->bias = folded_b;
      conv->weight_steps.clear();  // the folded weights are on no grid of the file's
      conv->output = conv->own_output = s.output;
      conv->fused.push_back("bn " + s.name);
      continue;
    }
    // A BatchNorm with no convolution to fold into: a per-channel scale and shift, which
    // is a 1x1 depthwise convolution.
    Step dw = std::move(s);
    dw.source_op = OpKind::conv;
    dw.kind = Step::Kind::conv;
    dw.window = Window{};
    dw.window.groups = c;
    dw.weight = dw.weight.reshape({c, 1, 1, 1}).clone();
    dw.fused.push_back("batch norm as 1x1 depthwise conv");
    out.push_back(std::move(dw));
  }
  plan.steps = std::move(out);
}

void fuse_residual_add(Plan& plan) {
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    if (plan.steps[i].kind != Step::Kind::add || plan.steps[i].relu) continue;
    std::vector<int> readers = reader_counts(plan);
    const Step add = plan.steps[i];
    // Prefer the later-produced input: in a residual block that is the main path's last
    // convolution, and the shortcut then already exists when it runs.
    int chosen = -1;
    for (int k : {1, 0}) {
      const int p = producer_of(plan, add.inputs[k]);
      if (p < 0 || add.inputs[0] == add.inputs[1]) continue;
      const Step& c = plan.steps[p];
      if (c.kind == Step::Kind::conv && !c.relu && !c.add_residual && readers[c.output] == 1 &&
          (chosen < 0 || p > producer_of(plan, add.inputs[chosen])))
        chosen = k;
    }
    if (chosen < 0) continue;
    const int p = producer_of(plan, add.inputs[chosen]);
    Step conv = plan.steps[p];
    conv.add_residual = true;
    conv.inputs.push_back(add.inputs[1 - chosen]);
    conv.output = add.output;
    conv.fused.push_back("add " + add.name);
    // The conv moves to the add's place, where both its input and the residual exist.
    plan.steps[i] = std::move(conv);
    plan.steps.erase(plan.steps.begin() + p);
    --i;
  }
}

void fuse_relu(Plan& plan) {
  std::vector<int> readers = reader_counts(plan);
  std::vector<Step> out;
  for (Step& s : plan.steps) {
    if (s.kind == Step::Kind::relu) {
      Step* prev = nullptr;
      for (Step& q : out)
        if (q.output == s.inputs[0] && (q.kind == Step::Kind::conv || q.kind == Step::Kind::add) &&
            !q.relu && readers[q.output] == 1)
          prev = &q;
      if (prev != nullptr) {
        prev->relu = true;
        prev->output = s.output;
        prev->fused.push_back("relu " + s.name);
        continue;
      }
    }
    out.push_back(std::move(s));
  }
  plan.steps = std::move(out);
}

void fuse_clip(Plan& plan) {
  std::vector<int> readers = reader_counts(plan);
  std::vector<Step> out;
  for (Step& s : plan.steps) {
    if (s.kind == Step::Kind::tensor_op && s.node.op == OpKind::clip) {
      Step* conv = nullptr;
      for (Step& q : out)
        if (q.output == s.inputs[0] && q.kind == Step::Kind::conv && !q.clip &&
            readers[q.output] == 1)
          conv = &q;
      if (conv != nullptr) {
        conv->clip = true;
        conv->clip_min = s.node.clip_min;
        conv->clip_max = s.node.clip_max;
        conv->output = s.output;
        conv->fused.push_back("clip " + s.name);
        continue;
      }
    }
    out.push_back(std::move(s));
  }
  plan.steps = std::move(out);
}

void fold_flatten(Plan& plan) {
  std::vector<int> readers = reader_counts(plan);
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    Step& f = plan.steps[i];
    if (f.kind != Step::Kind::flatten || readers[f.output] != 1) continue;
    for (size_t j = i + 1; j < plan.steps.size(); ++j) {
      Step& l = plan.steps[j];
      if (l.kind == Step::Kind::linear && l.inputs[0] == f.output) {
        l.inputs[0] = f.inputs[0];
        l.fused.push_back("flatten " + f.name);
        plan.steps.erase(plan.steps.begin() + i);
        --i;
        break;
      }
    }
  }
}

std::vector<int> last_uses(const Plan& plan) {
  std::vector<int> last(plan.values.size(), -1);
  for (size_t i = 0; i < plan.steps.size(); ++i)
    for (int v : plan.steps[i].inputs) last[v] = static_cast<int>(i);
  last[plan.output] = static_cast<int>(plan.steps.size());
  for (int v : plan.extra_outputs) last[v] = static_cast<int>(plan.steps.size());
  return last;
}

}  // namespace resnet::infer::detail
