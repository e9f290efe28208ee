#include "resnet/backend/fused_conv.h"

#include <algorithm>
#include <cmath>

#include "conv_plan.h"
#include "plan_cache.h"

namespace resnet::backend {

using namespace detail;

std::vector<float> int8_weight_steps(const Tensor& weight) {
  const int64_t oc = weight.dim(0), per = weight.numel() / oc;
  std::vector<float> steps(static_cast<size_t>(oc), 1.f);
  const float* p = weight.f32();
  for (int64_t o = 0; o < oc; ++o) {
    float m = 0;
    for (int64_t i = 0; i < per; ++i) m = std::max(m, std::abs(p[o * per + i]));
    if (m > 0) steps[o] = m / 127.f;
  }
  return steps;
}

struct FusedConv2d::Impl {
  FusedConv2dConfig cfg;
  Tensor weight, bias;

  struct Plan {
    dnnl::convolution_forward::primitive_desc pd;
    dnnl::convolution_forward prim;
    memory packed_weight, packed_bias;
    uint64_t weight_version = ~0ull, bias_version = ~0ull;
    const void* weight_data = nullptr;
    TensorFormat dst_format{};  // the output's dtype and layout, as a Tensor holds them
  };
  PlanCache<Plan> plans;
  std::string last_impl;
  int64_t weight_packs = 0;  // reorders of the weights into a primitive's layout

  // src_pin / dst_pin: a layout to use as is (an activation already in it), or a zero
  // descriptor to let oneDNN choose (the planner drops pins no fast kernel accepts).
  Plan make_plan(const Shape& src_shape, const memory::desc& src_pin, const memory::desc& dst_pin) {
    const Conv2dConfig& c = cfg.conv;
    ConvRequest r;
    r.purpose = ConvPurpose::inference;
    r.src_shape = src_shape;
    r.src_type = src_type();
    r.weight_type = weight_type();
    r.dst_type = dst_type();
    r.bias = true;
    r.src_pin = src_pin;
    r.dst_pin = dst_pin;
    dnnl::post_ops ops;
    if (int8()) {
      // dst = relu(out_scale[oc] * (acc + bias') + sum_scale * residual), everything in
      // the quantized domains: out_scale = s_dst / (s_src * s_w[oc]), sum = s_dst / s_res.
      std::vector<float> out_scales(c.out_channels);
      for (int64_t o = 0; o < c.out_channels; ++o)
        out_scales[o] = cfg.int8.dst_scale / (cfg.int8.src_scale * weight_scales[o]);
      r.attr.set_output_scales(2, out_scales);
      if (cfg.int8.clamp_own) {
        // Values here are real * dst_scale.
        ops.append_eltwise(1.f, dnnl::algorithm::eltwise_clip,
                           cfg.int8.own_lowest * cfg.int8.dst_scale,
                           cfg.int8.own_highest * cfg.int8.dst_scale);
      }
      if (cfg.add_residual)
        ops.append_sum(cfg.int8.dst_scale / cfg.int8.residual_scale, residual_type);
    } else if (cfg.add_residual) {
      ops.append_sum(1.f);
    }
    if (cfg.relu) ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    if (cfg.clip) {
      RESNET_CHECK(!int8(), "fused conv: a clip post-op in int8 is not supported");
      ops.append_eltwise(1.f, dnnl::algorithm::eltwise_clip, cfg.clip_min, cfg.clip_max);
    }
    r.attr.set_post_ops(ops);
    dnnl::convolution_forward::primitive_desc pd = plan_conv_forward(c, r);
    return Plan{pd, dnnl::convolution_forward(pd), memory(), memory()};
  }

  // Activations of ours are read in the layout they are in. A plain input is read as
  // nChw16c when its channels allow: measured on the seed's block (batch 32, 64 -> 128,
  // 56x56, AVX-512) the blocked path (jit direct + Winograd) took 21 ms against 28 ms
  // when oneDNN's own choice (NHWC, brgconv) was kept throughout.
  // The layout of `t`, with type `type`: ours are read where they are (their element
  // strides hold whatever the element type), a plain one (the caller's input, or a
  // value computed outside the convolutions) as nChw16c.
  static memory::desc pin_of(const Tensor* t, dt type) {
    if (t == nullptr) return memory::desc();
    if (!t->is_plain() && dtype_size(t->dtype()) == memory::data_type_size(type))
      return with_type(desc_of(*t), type);
    const memory::dims d = to_dims(t->shape());
    // oneDNN's int8 kernels read NHWC; its f32 Winograd and jit direct ones nChw16c.
    if (type == dt::u8 || type == dt::s8) return memory::desc(d, type, tag::acdb);
    return d[1] % 16 == 0 ? memory::desc(d, type, tag::aBcd16b) : memory::desc();
  }

  bool int8() const { return cfg.dtype == DType::i8; }
  float src_scale() const { return int8() ? cfg.int8.src_scale : 1.f; }
  dt weight_type() const { return int8() ? dt::s8 : cfg.dtype == DType::bf16 ? dt::bf16 : dt::f32; }
  dt src_type() const { return int8() ? (cfg.int8.src_unsigned ? dt::u8 : dt::s8) : weight_type(); }
  dt dst_type() const { return int8() ? (cfg.relu ? dt::u8 : dt::s8) : weight_type(); }
  // Per output channel, 127 / max |w| or 1 / the file's step (int8 only), and the
  // residual's element type.
  std::vector<float> weight_scales;
  dt residual_type = dt::undef;

  void compute_weight_scales() {
    const Tensor& w = weight;
    const int64_t oc = w.dim(0);
    weight_scales.assign(oc, 1.f);
    const std::vector<float>& steps = cfg.int8.weight_steps;
    if (!steps.empty()) {
      RESNET_CHECK(static_cast<int64_t>(steps.size()) == oc,
                   "fused conv: expected " << oc << " weight steps, found " << steps.size());
      for (int64_t o = 0; o < oc; ++o) weight_scales[o] = steps[o] > 0 ? 1.f / steps[o] : 1.f;
      return;
    }
    const std::vector<float> own = int8_weight_steps(w);
    for (int64_t o = 0; o < oc; ++o) weight_scales[o] = 1.f / own[o];
  }

  // Keyed by the input shape alone: the first input of a shape settles the plan's
  // layouts (from the activations it came with), and later inputs of that shape are
  // converted into them.
  Plan& plan_for(const Shape& src_shape, const Tensor* src, const Tensor* residual) {
    return plans.get(PlanKey(src_shape), [&] {
      if (int8()) {
        compute_weight_scales();
        // The sum reads the residual as u8 when it is (after a ReLU), else as s8; an f32
        // residual is quantized to s8 on the way in.
        if (residual != nullptr) residual_type = residual->dtype() == DType::u8 ? dt::u8 : dt::s8;
      }
      memory::desc dst_pin = pin_of(residual, dst_type());
      const Shape dst_shape = conv_dst_shape(cfg.conv, src_shape);
      const DType dst_dtype = *dtype_of(dst_type());
      if (dst_pin.is_zero() && cfg.blocked_output && cfg.conv.out_channels % 16 == 0)
        dst_pin = desc_of(dst_shape, dst_dtype, Layout::blocked16);
      Plan plan = make_plan(src_shape, pin_of(src, src_type()), dst_pin);
      // The output must be a layout a Tensor holds (tensor.h lists oneDNN's choices for
      // convolutions); should oneDNN choose another, ask again for NHWC.
      if (!tensor_format(plan.pd.dst_desc()).has_value())
        plan = make_plan(src_shape, pin_of(src, src_type()),
                         desc_of(dst_shape, dst_dtype, Layout::channels_last));
      const std::optional<TensorFormat> format = tensor_format(plan.pd.dst_desc());
      RESNET_CHECK(format.has_value(),
                   "fused conv: oneDNN offers no output layout a tensor can hold for input "
                       << shape_str(src_shape));
      plan.dst_format = *format;
      return plan;
    });
  }

  void pack_weights(Plan& p) {
    // Read through const references: the non-const accessors would bump the versions.
    const Tensor& weight = this->weight;
    const Tensor& bias = this->bias;
    auto current = [&](const Plan& q) {
      return q.weight_version == weight.version() && q.bias_version == bias.version() &&
             q.weight_data == weight.raw();
    };
    if (current(p)) return;
    // Another input shape whose primitive reads the same weight layout shares its packed
    // weights: a new batch size costs a primitive, not a repack.
    const Plan* shared = nullptr;
    plans.for_each([&](const Plan& other) {
      if (shared == nullptr && &other != &p && current(other) &&
          other.pd.weights_desc() == p.pd.weights_desc() &&
          other.pd.bias_desc() == p.pd.bias_desc())
        shared = &other;
    });
    if (shared != nullptr) {
      p.packed_weight = shared->packed_weight;
      p.packed_bias = shared->packed_bias;
      p.weight_version = shared->weight_version;
      p.bias_version = shared->bias_version;
      p.weight_data = shared->weight_data;
      return;
    }
    ++weight_packs;
    const Conv2dConfig& c = cfg.conv;
    const memory::desc plain_w = conv_weight_desc(c, dt::f32, false);
    p.packed_weight = memory(p.pd.weights_desc(), engine());
    memory plain_weight(plain_w, engine(), const_cast<void*>(weight.raw()));
    p.packed_bias = memory(p.pd.bias_desc(), engine());
    if (int8()) {
      // s8 weights: each output channel scaled by its own factor (mask: the dims that
      // index output channels, 0 for oihw and 0 and 1 for goihw).
      reorder_scaled(plain_weight, p.packed_weight, c.groups == 1 ? 1 : 3, weight_scales);
      // The bias joins the s32 accumulator, so it carries the accumulator's scale.
      Tensor scaled_bias({c.out_channels});
      for (int64_t o = 0; o < c.out_channels; ++o)
        scaled_bias.f32()[o] = bias.f32()[o] * cfg.int8.src_scale * weight_scales[o];
      reorder_into(wrap(scaled_bias), p.packed_bias);
    } else {
      reorder_into(plain_weight, p.packed_weight);
      reorder_into(wrap(bias), p.packed_bias);
    }
    p.weight_version = weight.version();
    p.bias_version = bias.version();
    p.weight_data = weight.raw();
  }
};

FusedConv2d::FusedConv2d(const FusedConv2dConfig& config) : impl_(std::make_unique<Impl>()) {
  impl_->cfg = config;
}
FusedConv2d::~FusedConv2d() = default;

void FusedConv2d::set_weights(const Tensor& weight, const Tensor& bias) {
  const Conv2dConfig& c = impl_->cfg.conv;
  Shape expected = {c.out_channels, c.in_channels / c.groups, c.kernel_h, c.kernel_w};
  RESNET_CHECK(weight.shape() == expected, "fused conv: expected weight " << shape_str(expected)
                                                                          << ", got "
                                                                          << weight.shape_str());
  RESNET_CHECK(bias.shape() == Shape{c.out_channels},
               "fused conv: expected bias [" << c.out_channels << "], got " << bias.shape_str());
  impl_->weight = weight;
  impl_->bias = bias;
}

Tensor FusedConv2d::run(const Tensor& src, Tensor residual) {
  return guarded("fused conv", [&] {
    RESNET_CHECK(impl_->weight.defined(), "fused conv: weights not set");
    RESNET_CHECK(src.defined() && src.rank() == 4 && src.dim(1) == impl_->cfg.conv.in_channels,
                 "fused conv: expected an input [N, "
                     << impl_->cfg.conv.in_channels << ", H, W], got "
                     << (src.defined() ? src.shape_str() : "nothing"));
    const FusedConv2dConfig& cfg = impl_->cfg;
    Impl::Plan& p = impl_->plan_for(src.shape(), &src, residual.defined() ? &residual : nullptr);
    impl_->pack_weights(p);
    const float src_scale = impl_->src_scale();
    memory src_m = converted(wrap(src), stored_scale(src, src_scale), p.pd.src_desc(), src_scale);
    const memory::desc dst_desc = p.pd.dst_desc();
    const Shape dst_shape = conv_dst_shape(impl_->cfg.conv, src.shape());
    Tensor out;
    if (cfg.add_residual) {
      RESNET_CHECK(residual.defined(), "fused conv: expected a residual input");
      RESNET_CHECK(to_dims(residual.shape()) == dst_desc.dims(),
                   "fused conv: expected residual " << shape_str(dst_desc.dims()) << ", got "
                                                    << residual.shape_str());
      // The sum post-op accumulates into dst, so dst starts as the residual, in the
      // output's layout and in the type and scale the sum reads. When the residual is
      // already so and nobody else reads it (the caller handed over its only reference),
      // its storage becomes the output.
      const float res_scale = impl_->int8() ? cfg.int8.residual_scale : 1.f;
      const memory::desc res_desc =
          impl_->int8() ? with_type(dst_desc, impl_->residual_type) : dst_desc;
      const float stored = stored_scale(residual, res_scale);
      if (residual.sole_owner() && desc_of(residual) == res_desc && stored == res_scale) {
        out = residual.view_as(p.dst_format.dtype);
      } else {
        out = Tensor::empty(dst_shape, p.dst_format.dtype, p.dst_format.layout);
        convert_into(wrap(residual), stored, memory(res_desc, engine(), out.raw()), res_scale);
      }
    } else {
      out = Tensor::empty(dst_shape, p.dst_format.dtype, p.dst_format.layout);
    }
    execute(p.prim, {{DNNL_ARG_SRC, src_m},
                     {DNNL_ARG_WEIGHTS, p.packed_weight},
                     {DNNL_ARG_BIAS, p.packed_bias},
                     {DNNL_ARG_DST, wrap(out)}});
    impl_->last_impl = p.pd.impl_info_str();
    return out;
  });
}

std::string FusedConv2d::implementation() const {
  return impl_->last_impl;
}

int64_t FusedConv2d::weight_packs() const {
  return impl_->weight_packs;
}

}  // namespace resnet::backend
