#include "resnet/backend/fused_conv.h"

#include <algorithm>
#include <cmath>

#include "activation_impl.h"
#include "conv_plan.h"
#include "plan_cache.h"

namespace resnet::backend {

using namespace detail;

struct FusedConv2d::Impl {
  FusedConv2dConfig cfg;
  Tensor weight, bias;

  struct Plan {
    dnnl::convolution_forward::primitive_desc pd;
    dnnl::convolution_forward prim;
    memory packed_weight, packed_bias;
    uint64_t weight_version = ~0ull, bias_version = ~0ull;
    const void* weight_data = nullptr;
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
      if (cfg.add_residual)
        ops.append_sum(cfg.int8.dst_scale / cfg.int8.residual_scale, residual_type);
    } else if (cfg.add_residual) {
      ops.append_sum(1.f);
    }
    if (cfg.relu) ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    r.attr.set_post_ops(ops);
    dnnl::convolution_forward::primitive_desc pd = plan_conv_forward(c, r);
    return Plan{pd, dnnl::convolution_forward(pd), memory(), memory()};
  }

  // Activations of ours are read in the layout they are in. A plain input is read as
  // nChw16c when its channels allow: measured on the seed's block (batch 32, 64 -> 128,
  // 56x56, AVX-512) the blocked path (jit direct + Winograd) took 21 ms against 28 ms
  // when oneDNN's own choice (NHWC, brgconv) was kept throughout.
  // The layout of `a`, with type `type`: ours are read where they are (their element
  // strides hold whatever the element type), a borrowed plain one as nChw16c.
  static memory::desc pin_of(const Activation::Impl* a, dt type) {
    if (a == nullptr) return memory::desc();
    if (!a->borrowed) {
      memory::desc md = a->mem.get_desc();
      if (dnnl::memory::data_type_size(md.data_type()) == dnnl::memory::data_type_size(type)) {
        md.data.data_type = memory::convert_to_c(type);
        return md;
      }
    }
    const memory::dims d = a->mem.get_desc().dims();
    // oneDNN's int8 kernels read NHWC; its f32 Winograd and jit direct ones nChw16c.
    if (type == dt::u8 || type == dt::s8) return memory::desc(d, type, tag::acdb);
    return d[1] % 16 == 0 ? memory::desc(d, type, tag::aBcd16b) : memory::desc();
  }

  bool int8() const { return cfg.dtype == DType::i8; }
  float src_scale() const { return int8() ? cfg.int8.src_scale : 1.f; }
  dt weight_type() const { return int8() ? dt::s8 : cfg.dtype == DType::bf16 ? dt::bf16 : dt::f32; }
  dt src_type() const { return int8() ? (cfg.int8.src_unsigned ? dt::u8 : dt::s8) : weight_type(); }
  dt dst_type() const { return int8() ? (cfg.relu ? dt::u8 : dt::s8) : weight_type(); }
  // Per output channel, 127 / max |w| (int8 only), and the residual's element type.
  std::vector<float> weight_scales;
  dt residual_type = dt::undef;

  void compute_weight_scales() {
    const Tensor& w = weight;
    const int64_t oc = w.dim(0), per = w.numel() / oc;
    weight_scales.assign(oc, 1.f);
    const float* p = w.f32();
    for (int64_t o = 0; o < oc; ++o) {
      float m = 0;
      for (int64_t i = 0; i < per; ++i) m = std::max(m, std::abs(p[o * per + i]));
      weight_scales[o] = m > 0 ? 127.f / m : 1.f;
    }
  }

  // Keyed by the input shape alone: the first input of a shape settles the plan's
  // layouts (from the activations it came with), and later inputs of that shape are
  // converted into them, so that adopt() and run() agree on one plan.
  Plan& plan_for(const Shape& src_shape, const Activation::Impl* src,
                 const Activation::Impl* residual) {
    return plans.get(PlanKey(src_shape), [&] {
      if (int8()) {
        compute_weight_scales();
        // The sum reads the residual as u8 when it is (after a ReLU), else as s8; an f32
        // residual is quantized to s8 on the way in.
        if (residual != nullptr)
          residual_type = residual->mem.get_desc().data_type() == dt::u8 ? dt::u8 : dt::s8;
      }
      memory::desc dst_pin = pin_of(residual, dst_type());
      if (dst_pin.is_zero() && cfg.blocked_output && cfg.conv.out_channels % 16 == 0)
        dst_pin =
            memory::desc(to_dims(conv_dst_shape(cfg.conv, src_shape)), dst_type(), tag::aBcd16b);
      return make_plan(src_shape, pin_of(src, src_type()), dst_pin);
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

Activation FusedConv2d::adopt(const Activation& src) {
  return guarded("fused conv", [&] {
    Impl::Plan& p = impl_->plan_for(src.shape(), ActivationAccess::impl(src), nullptr);
    const float scale = impl_->src_scale();
    if (ActivationAccess::mem(src).get_desc() == p.pd.src_desc() &&
        ActivationAccess::scale(src) == scale)
      return src;
    Activation out =
        ActivationAccess::adopt_memory(ActivationAccess::converted(src, p.pd.src_desc(), scale));
    ActivationAccess::set_scale(out, scale);
    return out;
  });
}

Activation FusedConv2d::run(const Activation& src, Activation residual, ActivationPool* pool) {
  return guarded("fused conv", [&] {
    RESNET_CHECK(impl_->weight.defined(), "fused conv: weights not set");
    Shape src_shape = src.shape();
    RESNET_CHECK(src_shape[1] == impl_->cfg.conv.in_channels,
                 "fused conv: expected " << impl_->cfg.conv.in_channels << " input channels, got "
                                         << src_shape[1]);
    Activation::Impl* res = ActivationAccess::impl(residual);
    Impl::Plan& p = impl_->plan_for(src_shape, ActivationAccess::impl(src), res);
    impl_->pack_weights(p);
    memory src_m = ActivationAccess::converted(src, p.pd.src_desc(), impl_->src_scale());
    const memory::desc dst_desc = p.pd.dst_desc();
    Activation out;
    if (impl_->cfg.add_residual) {
      RESNET_CHECK(res != nullptr, "fused conv: expected a residual input");
      RESNET_CHECK(res->mem.get_desc().dims() == dst_desc.dims(),
                   "fused conv: expected residual " << shape_str(dst_desc.dims()) << ", got "
                                                    << shape_str(res->mem.get_desc().dims()));
      // The sum post-op accumulates into dst, so dst starts as the residual, in the
      // output's layout and in the type and scale the sum reads. When the residual is
      // ours, already so, and read by nobody else (this call holds the only reference),
      // its buffer becomes the output.
      const float res_scale = impl_->int8() ? impl_->cfg.int8.residual_scale : 1.f;
      const memory::desc res_desc =
          impl_->int8() ? with_type(dst_desc, impl_->residual_type) : dst_desc;
      if (!res->borrowed && ActivationAccess::sole_owner(residual) &&
          res->mem.get_desc() == res_desc && ActivationAccess::scale(residual) == res_scale) {
        out = ActivationAccess::alias(std::move(residual), dst_desc);
      } else {
        out = ActivationAccess::allocate(dst_desc, pool);
        ActivationAccess::convert_into(
            residual, memory(res_desc, engine(), ActivationAccess::mem(out).get_data_handle()),
            res_scale);
      }
    } else {
      out = ActivationAccess::allocate(dst_desc, pool);
    }
    if (impl_->int8()) ActivationAccess::set_scale(out, impl_->cfg.int8.dst_scale);
    execute(p.prim, {{DNNL_ARG_SRC, src_m},
                     {DNNL_ARG_WEIGHTS, p.packed_weight},
                     {DNNL_ARG_BIAS, p.packed_bias},
                     {DNNL_ARG_DST, ActivationAccess::mem(out)}});
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
