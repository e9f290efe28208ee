#include "resnet/infer/compiled_model.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include "plan.h"
#include "resnet/backend/activation_ops.h"
#include "resnet/backend/fused_conv.h"
#include "resnet/backend/shortcut_pad.h"
#include "resnet/core/error.h"
#include "resnet/infer/calibration.h"
#include "resnet/nn/conv2d.h"

namespace resnet::infer {

using detail::Plan;
using detail::Step;

namespace {

DType activation_dtype(Precision p) {
  return p == Precision::bf16 ? DType::bf16 : DType::f32;
}

// A graph's convolution as the layer options it would come from: compiled and training
// convolutions reach the backend through the one translation, nn::to_backend_config.
// Symmetric padding only (checked by the caller).
nn::Conv2dOptions conv_options(const Window& w, const Tensor& weight) {
  nn::Conv2dOptions o;
  o.in_channels = weight.dim(1) * w.groups;
  o.out_channels = weight.dim(0);
  o.kernel_h = w.kernel_h, o.kernel_w = w.kernel_w;
  o.stride_h = w.stride_h, o.stride_w = w.stride_w;
  o.pad_h = w.pad_t, o.pad_w = w.pad_l;
  o.dilation_h = w.dilation_h, o.dilation_w = w.dilation_w;
  o.groups = w.groups;
  return o;
}

// `t` (plain f32) rounded onto `grid` and saturated to its range, in place.
void round_onto(Tensor& t, const Quantization& grid) {
  const float lo = static_cast<float>(grid.qmin - grid.zero_point);
  const float hi = static_cast<float>(grid.qmax - grid.zero_point);
  for (float& v : t.values()) v = std::clamp(std::nearbyint(v / grid.scale), lo, hi) * grid.scale;
}

}  // namespace

// One step made executable: its oneDNN objects, created at compile time; their
// primitives are built on the first run of each input shape and reused after.
struct CompiledStep {
  Step step;
  std::unique_ptr<backend::FusedConv2d> conv;
  std::unique_ptr<backend::ActivationPool2d> pool;
  std::unique_ptr<backend::ActivationLinear> linear;
};

struct CompiledModel::Impl {
  Graph graph;
  CompileOptions options;
  Plan plan;
  std::vector<CompiledStep> steps;
  std::vector<int> last_use;
  Shape compiled_for;
  // Every value's shape, per input shape seen (prepare()).
  std::map<Shape, std::vector<Shape>> value_shapes;
  // The most activation bytes alive at once in the last run (memory_stats).
  size_t peak_activation_bytes = 0;
  std::function<void(const std::string&, const Tensor&)> observer;
  std::string fallback_note;

  // int8: whether a value holds u8 (it is a ReLU's output, or pooled from one), and its
  // scale (real = quantized / scale).
  std::vector<bool> value_unsigned;
  std::vector<float> value_scale;

  void plan_int8_scales() {
    RESNET_CHECK(options.calibration != nullptr,
                 "int8: the model has no calibration; run `resnet quantize` first");
    const Calibration& cal = *options.calibration;
    value_unsigned.assign(plan.values.size(), false);
    value_scale.assign(plan.values.size(), 1.f);
    auto range = [&](int v) {
      auto it = cal.max_abs.find(plan.values[v].name);
      RESNET_CHECK(it != cal.max_abs.end(), "int8: the calibration has no range for value '"
                                                << plan.values[v].name
                                                << "'; it was made for another model");
      return it->second > 0 ? it->second : 1.f;
    };
    value_scale[0] = 127.f / range(0);
    for (const Step& s : plan.steps) {
      const int v = s.output;
      if (s.kind == Step::Kind::conv) {
        value_unsigned[v] = s.relu;
        value_scale[v] = (s.relu ? 255.f : 127.f) / range(v);
      } else if (s.kind == Step::Kind::pool) {
        // Max and average pooling keep the input's type and scale.
        value_unsigned[v] = value_unsigned[s.inputs[0]];
        value_scale[v] = value_scale[s.inputs[0]];
      } else if (cal.max_abs.count(plan.values[v].name) || read_by_conv(v)) {
        // Computed in f32; a convolution reading it quantizes it to s8.
        value_scale[v] = 127.f / range(v);
      }  // else: f32 all the way (a quantized file's float logits), scale 1
    }
  }

  // A quantized file saturates a convolution's result to its grid's range where it
  // quantizes it. Where the int8 output does not hold that range exactly (the result is
  // added to a residual before it is stored, or the grid is asymmetric and ours is not),
  // the kernel clamps to it first; otherwise its own output grid already is the file's.
  void keep_file_range(const Step& s, backend::FusedConv2dConfig::Int8& f) const {
    const std::optional<Quantization>& q = plan.values[s.own_output].quant;
    if (!q.has_value()) return;
    const bool exact = q->centered() || (q->zero_point == q->qmin && s.relu);
    if (exact && s.own_output == s.output) return;
    f.clamp_own = true;
    f.own_lowest = q->lowest(), f.own_highest = q->highest();
  }

  bool read_by_conv(int v) const {
    for (const Step& s : plan.steps)
      if (s.kind == Step::Kind::conv &&
          std::find(s.inputs.begin(), s.inputs.end(), v) != s.inputs.end())
        return true;
    return false;
  }

  // The graph's steps after the passes, with every value's shape for `input_shape`.
  Plan planned_for(const Shape& input_shape) {
    graph.infer_shapes(input_shape);
    Plan p = detail::plan_from_graph(graph);
    detail::fold_batch_norm(p);
    if (options.fuse) {
      detail::fuse_residual_add(p);
      detail::fuse_relu(p);
      // int8 convolutions keep a ReLU's u8 output and the scales their ranges give; a
      // clip stays a step of its own there.
      if (options.precision != Precision::int8) detail::fuse_clip(p);
    }
    detail::fold_flatten(p);
    return p;
  }

  // Makes the model ready for inputs of `input_shape`. The steps (and the weights they
  // pack) are built once: the passes do not depend on the shape, and each convolution
  // keeps one primitive per input shape beside weights packed once per layout. Another
  // shape only needs every value's shape, which is kept per input shape, so that eval's
  // last, shorter batch costs neither a recompilation nor a repack.
  void prepare(const Shape& input_shape) {
    if (input_shape == compiled_for) return;
    auto it = value_shapes.find(input_shape);
    if (steps.empty()) {
      compile(input_shape);
      it = value_shapes.emplace(input_shape, shapes_of(plan)).first;
    } else if (it == value_shapes.end()) {
      const Plan other = planned_for(input_shape);
      RESNET_CHECK(other.values.size() == plan.values.size(),
                   "compile: the plan for input " << shape_str(input_shape)
                                                  << " differs from the compiled one");
      it = value_shapes.emplace(input_shape, shapes_of(other)).first;
    }
    for (size_t v = 0; v < plan.values.size(); ++v) plan.values[v].shape = it->second[v];
    compiled_for = input_shape;
  }

  static std::vector<Shape> shapes_of(const Plan& p) {
    std::vector<Shape> shapes;
    for (const Value& v : p.values) shapes.push_back(v.shape);
    return shapes;
  }

  void compile(const Shape& input_shape) {
    plan = planned_for(input_shape);
    last_use = detail::last_uses(plan);
    if (options.precision == Precision::int8) plan_int8_scales();
    steps.clear();
    const DType dtype = activation_dtype(options.precision);
    const bool blocked =
        options.layout == LayoutChoice::blocked ||
        (options.layout == LayoutChoice::automatic && options.precision == Precision::f32);
    for (const Step& s : plan.steps) {
      CompiledStep cs{s, nullptr, nullptr, nullptr};
      const Window& w = s.window;
      switch (s.kind) {
        case Step::Kind::conv: {
          RESNET_CHECK(w.pad_t == w.pad_b && w.pad_l == w.pad_r,
                       "compile: node '" << s.name << "' (Conv): asymmetric padding [" << w.pad_t
                                         << ", " << w.pad_l << ", " << w.pad_b << ", " << w.pad_r
                                         << "] is not supported");
          backend::FusedConv2dConfig f;
          f.conv = nn::to_backend_config(conv_options(w, s.weight));
          f.conv.bias = true;
          f.add_residual = s.add_residual;
          f.relu = s.relu;
          f.clip = s.clip;
          f.clip_min = s.clip_min;
          f.clip_max = s.clip_max;
          f.dtype = dtype;
          f.blocked_output = blocked;
          if (options.precision == Precision::int8) {
            f.dtype = DType::i8;
            f.int8.src_scale = value_scale[s.inputs[0]];
            f.int8.src_unsigned = value_unsigned[s.inputs[0]];
            f.int8.dst_scale = value_scale[s.output];
            f.int8.weight_steps = s.weight_steps;
            keep_file_range(s, f.int8);
            if (s.add_residual) f.int8.residual_scale = value_scale[s.inputs[1]];
          }
          cs.conv = std::make_unique<backend::FusedConv2d>(f);
          cs.conv->set_weights(s.weight, s.bias);
          break;
        }
        case Step::Kind::pool: {
          backend::Pool2dConfig p;
          p.kind = s.source_op == OpKind::max_pool ? backend::Pool2dConfig::Kind::max
                   : w.count_include_pad           ? backend::Pool2dConfig::Kind::avg_include_pad
                                                   : backend::Pool2dConfig::Kind::avg_exclude_pad;
          RESNET_CHECK(!(s.source_op == OpKind::avg_pool && w.count_include_pad && w.ceil_mode),
                       "compile: node '" << s.name
                                         << "' (AveragePool): count_include_pad with ceil_mode "
                                            "is not supported");
          p.global = s.source_op == OpKind::global_avg_pool;
          p.kernel_h = w.kernel_h, p.kernel_w = w.kernel_w;
          p.stride_h = w.stride_h, p.stride_w = w.stride_w;
          p.pad_t = w.pad_t, p.pad_l = w.pad_l, p.pad_b = w.pad_b, p.pad_r = w.pad_r;
          p.dilation_h = w.dilation_h, p.dilation_w = w.dilation_w;
          p.kernel_d = w.kernel_d, p.stride_d = w.stride_d, p.pad_front = w.pad_front;
          p.dilation_d = w.dilation_d;
          cs.pool = std::make_unique<backend::ActivationPool2d>(p);
          break;
        }
        case Step::Kind::linear:
          cs.linear = std::make_unique<backend::ActivationLinear>(dtype);
          cs.linear->set_weights(s.weight, s.bias);
          break;
        default:
          break;
      }
      steps.push_back(std::move(cs));
    }
  }

  // The scale value `v`'s int8 tensor carries (1 outside int8).
  float int8_scale(int v) const {
    return options.precision == Precision::int8 ? value_scale[v] : 1.f;
  }

  // The classifier runs in f32. In int8 its input, pooled on the grid of the pool's
  // input, goes onto the pool output's own grid first where a quantized file gives one.
  Tensor run_linear(CompiledStep& cs, const Tensor& in) {
    const int v = cs.step.inputs[0];
    const std::optional<Quantization>& grid = plan.values[v].quant;
    if (options.precision != Precision::int8 || !grid.has_value())
      return cs.linear->run(in, int8_scale(v));
    Tensor x = backend::to_plain_f32(in, int8_scale(v));
    if (x.same_storage(in)) x = x.clone();  // other steps may read `in`
    round_onto(x, *grid);
    return cs.linear->run(x, 1.f);
  }

  // Every output: f32 ones plain, the others (Indices, a mask) as their loops made them.
  std::vector<Tensor> run_outputs(const Tensor& x) {
    std::vector<Tensor> vals = run_steps(x);
    std::vector<Tensor> outs = {backend::to_plain_f32(vals[plan.output], int8_scale(plan.output))};
    for (int v : plan.extra_outputs)
      outs.push_back(plan.values[v].type == ElementType::f32
                         ? backend::to_plain_f32(vals[v], int8_scale(v))
                         : vals[v]);
    return outs;
  }

  // Runs every step on `x`; returns the values, the graph's outputs among them.
  std::vector<Tensor> run_steps(const Tensor& x) {
    RESNET_CHECK(x.defined() && x.dtype() == DType::f32 && x.is_plain(),
                 "run: expected a plain f32 input, got "
                     << (x.defined() ? x.shape_str() : std::string("nothing")));
    prepare(x.shape());
    std::vector<Tensor> vals(plan.values.size());
    vals[0] = x;
    if (observer) observer(plan.values[0].name, x);
    const bool int8 = options.precision == Precision::int8;
    // Element-wise fallbacks work on f32 (or bf16); int8 inputs are dequantized first.
    auto dequantized = [&](int v) {
      return int8 ? backend::activation_convert(vals[v], int8_scale(v), DType::f32, true) : vals[v];
    };
    auto plain = [&](int v) { return backend::to_plain_f32(vals[v], int8_scale(v)); };
    peak_activation_bytes = 0;
    for (size_t i = 0; i < steps.size(); ++i) {
      CompiledStep& cs = steps[i];
      const Step& s = cs.step;
      const int idx = static_cast<int>(i);
      // A value read for the last time is handed over (moved), so that its storage can
      // become this step's output.
      auto take = [&](int v) { return last_use[v] == idx ? std::move(vals[v]) : vals[v]; };
      Tensor out;
      switch (s.kind) {
        case Step::Kind::conv: {
          Tensor residual = s.add_residual ? take(s.inputs[1]) : Tensor();
          out = cs.conv->run(vals[s.inputs[0]], std::move(residual));
          break;
        }
        case Step::Kind::pool: {
          const Shape& y = plan.values[s.output].shape;
          out = cs.pool->run(vals[s.inputs[0]], std::vector<int64_t>(y.begin() + 2, y.end()));
          break;
        }
        case Step::Kind::linear:
          out = run_linear(cs, vals[s.inputs[0]]);
          break;
        case Step::Kind::relu:
          out = backend::activation_relu(dequantized(s.inputs[0]));
          break;
        case Step::Kind::add:
          out = backend::activation_add(dequantized(s.inputs[0]), dequantized(s.inputs[1]), s.relu);
          break;
        case Step::Kind::flatten:
          out = plain(s.inputs[0]).reshape(plan.values[s.output].shape);
          break;
        case Step::Kind::subsample:
          out = backend::subsample_pad_channels(plain(s.inputs[0]), s.window.stride_h,
                                                s.window.stride_w, 0, 0);
          break;
        case Step::Kind::pad_channels:
          out = backend::subsample_pad_channels(plain(s.inputs[0]), 1, 1, s.pads[0], s.pads[1]);
          break;
        case Step::Kind::tensor_op: {
          std::vector<Shape> shapes = {plan.values[s.output].shape};
          for (int v : s.extra_outputs) shapes.push_back(plan.values[v].shape);
          std::vector<Tensor> outs =
              detail::run_tensor_op_outputs(s.node, plain(s.inputs[0]), shapes);
          for (size_t k = 0; k < s.extra_outputs.size(); ++k)
            vals[s.extra_outputs[k]] = std::move(outs[k + 1]);
          out = std::move(outs[0]);
          break;
        }
      }
      // A value the int8 plan computes in f32 (the classifier, element-wise fallbacks)
      // goes onto the grid a quantized file puts it on, as the file's integers hold it.
      const std::optional<Quantization>& grid = plan.values[s.output].quant;
      if (int8 && grid.has_value() && out.dtype() == DType::f32 && out.is_plain())
        round_onto(out, *grid);
      vals[s.output] = std::move(out);
      if (observer)
        observer(plan.values[s.output].name,
                 backend::to_plain_f32(vals[s.output], int8_scale(s.output)));
      for (int v : s.inputs)
        if (last_use[v] == idx) vals[v] = Tensor();
      peak_activation_bytes = std::max(peak_activation_bytes, live_bytes(vals));
    }
    return vals;
  }

  // Bytes of the distinct storages `vals` holds, less the caller's input.
  static size_t live_bytes(const std::vector<Tensor>& vals) {
    std::vector<const void*> seen;
    size_t bytes = 0;
    for (size_t v = 1; v < vals.size(); ++v) {
      const Tensor& t = vals[v];
      if (!t.defined() || t.same_storage(vals[0])) continue;
      if (std::find(seen.begin(), seen.end(), t.raw()) != seen.end()) continue;
      seen.push_back(t.raw());
      bytes += t.nbytes();
    }
    return bytes;
  }
};

CompiledModel::CompiledModel(Graph graph, CompileOptions options)
    : impl_(std::make_unique<Impl>()) {
  graph.validate();
  impl_->graph = std::move(graph);
  if (options.precision == Precision::bf16) {
    impl_->fallback_note = backend::bf16_fallback_note();
    if (!impl_->fallback_note.empty()) options.precision = Precision::f32;
  }
  impl_->options = options;
}
CompiledModel::~CompiledModel() = default;
CompiledModel::CompiledModel(CompiledModel&&) noexcept = default;
CompiledModel& CompiledModel::operator=(CompiledModel&&) noexcept = default;

Tensor CompiledModel::run(const Tensor& x) {
  return impl_->run_outputs(x)[0];
}

std::vector<Tensor> CompiledModel::run_outputs(const Tensor& x) {
  return impl_->run_outputs(x);
}

const std::string& CompiledModel::fallback_note() const {
  return impl_->fallback_note;
}

CompiledModel::MemoryStats CompiledModel::memory_stats() const {
  MemoryStats m;
  m.buffer_bytes = impl_->peak_activation_bytes;
  // Every convolution and pool writes a pooled buffer, of the precision's element size
  // (u8/s8 for int8).
  const size_t element = impl_->options.precision == Precision::f32    ? 4
                         : impl_->options.precision == Precision::bf16 ? 2
                                                                       : 1;
  for (const CompiledStep& cs : impl_->steps) {
    if (cs.conv) m.weight_packs += cs.conv->weight_packs();
    if (cs.conv || cs.pool)
      m.activation_bytes +=
          static_cast<size_t>(shape_numel(impl_->plan.values[cs.step.output].shape)) * element;
  }
  return m;
}

void CompiledModel::set_observer(std::function<void(const std::string&, const Tensor&)> observer) {
  impl_->observer = std::move(observer);
}

std::string CompiledModel::describe() const {
  std::ostringstream out;
  if (!impl_->fallback_note.empty()) out << impl_->fallback_note << "\n";
  for (const CompiledStep& cs : impl_->steps) {
    const Step& s = cs.step;
    out << op_name(s.source_op) << " " << s.name;
    for (const std::string& f : s.fused) out << " + " << f;
    if (cs.conv && !cs.conv->implementation().empty())
      out << " [" << cs.conv->implementation() << "]";
    out << "\n";
  }
  const MemoryStats m = memory_stats();
  if (m.buffer_bytes > 0)
    out << "activations: at most " << m.buffer_bytes / 1024 << " KiB live at once, of "
        << m.activation_bytes / 1024 << " KiB per run\n";
  return out.str();
}

}  // namespace resnet::infer
