#include "resnet/backend/fused_conv.h"

#include <cstdlib>
#include <cstring>
#include <optional>

#include "activation_impl.h"
#include "dnnl_context.h"

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

  // Winograd is much faster for 3x3 stride-1 convolutions where oneDNN has it
  // (AVX-512 inference); elsewhere creating it throws and we use direct convolution.
  static bool winograd_candidate(const Conv2dConfig& c) {
    return c.kernel_h == 3 && c.kernel_w == 3 && c.stride_h == 1 && c.stride_w == 1 &&
           c.dilation_h == 1 && c.dilation_w == 1 && c.groups == 1;
  }

  // src_pin / dst_pin: a layout to use as is (an activation already in it), or a zero
  // descriptor to let oneDNN choose. Pins that no implementation accepts are dropped.
  Plan make_plan(const Shape& src_shape, const memory::desc& src_pin, const memory::desc& dst_pin) {
    const Conv2dConfig& c = cfg.conv;
    const int64_t h = src_shape[2], w = src_shape[3];
    Shape dst_shape = {src_shape[0], c.out_channels, c.out_h(h), c.out_w(w)};
    const dt type = data_type();
    auto any = [type](const Shape& s) { return memory::desc(to_dims(s), type, tag::any); };
    memory::desc wd = c.groups == 1
                          ? any({c.out_channels, c.in_channels, c.kernel_h, c.kernel_w})
                          : memory::desc({c.groups, c.out_channels / c.groups,
                                          c.in_channels / c.groups, c.kernel_h, c.kernel_w},
                                         type, tag::any);
    memory::dims pad_r = {
        (c.out_h(h) - 1) * c.stride_h + c.dilation_h * (c.kernel_h - 1) + 1 - h - c.pad_h,
        (c.out_w(w) - 1) * c.stride_w + c.dilation_w * (c.kernel_w - 1) + 1 - w - c.pad_w};
    dnnl::post_ops ops;
    if (cfg.add_residual) ops.append_sum(1.f);
    if (cfg.relu) ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    auto create = [&](dnnl::algorithm alg,
                      bool pinned) -> std::optional<dnnl::convolution_forward::primitive_desc> {
      memory::desc src_md = pinned && !src_pin.is_zero() ? src_pin : any(src_shape);
      memory::desc dst_md = pinned && !dst_pin.is_zero() ? dst_pin : any(dst_shape);
      try {
        dnnl::convolution_forward::desc d(
            dnnl::prop_kind::forward_inference, alg, src_md, wd,
            memory::desc({c.out_channels}, dt::f32, tag::any), dst_md, {c.stride_h, c.stride_w},
            {c.dilation_h - 1, c.dilation_w - 1}, {c.pad_h, c.pad_w}, pad_r);
        return dnnl::convolution_forward::primitive_desc(d, attr, engine());
      } catch (const dnnl::error&) {
        return std::nullopt;
      }
    };
    std::optional<dnnl::convolution_forward::primitive_desc> pd;
    if (winograd_candidate(c) && winograd_enabled())
      pd = create(dnnl::algorithm::convolution_winograd, true);
    if (!pd) pd = create(dnnl::algorithm::convolution_direct, true);
    if (!pd) pd = create(dnnl::algorithm::convolution_direct, false);
    RESNET_CHECK(pd.has_value(),
                 "fused conv: oneDNN has no implementation for input " << shape_str(src_shape));
    return Plan{*pd, dnnl::convolution_forward(*pd), memory(), memory()};
  }

  static bool winograd_enabled() {
    static const bool enabled = [] {
      const char* v = std::getenv("RESNET_WINOGRAD");
      return v == nullptr || std::string(v) != "0";
    }();
    return enabled;
  }

  // Activations of ours are read in the layout they are in. A plain input is read as
  // nChw16c when its channels allow: measured on the seed's block (batch 32, 64 -> 128,
  // 56x56, AVX-512) the blocked path (jit direct + Winograd) took 21 ms against 28 ms
  // when oneDNN's own choice (NHWC, brgconv) was kept throughout.
  memory::desc pin_of(const Activation::Impl* a) const {
    if (a == nullptr) return memory::desc();
    if (!a->borrowed && a->mem.get_desc().data_type() == data_type()) return a->mem.get_desc();
    const memory::dims d = a->mem.get_desc().dims();
    return d[1] % 16 == 0 ? memory::desc(d, data_type(), tag::aBcd16b) : memory::desc();
  }

  dt data_type() const { return cfg.dtype == DType::bf16 ? dt::bf16 : dt::f32; }

  Plan& plan_for(const Shape& src_shape, const Activation::Impl* src,
                 const Activation::Impl* residual) {
    auto it = plans.find(src_shape);
    if (it == plans.end()) {
      memory::desc dst_pin = pin_of(residual);
      if (dst_pin.is_zero() && cfg.blocked_output && cfg.conv.out_channels % 16 == 0) {
        const Shape& s = src_shape;
        dst_pin =
            memory::desc({s[0], cfg.conv.out_channels, cfg.conv.out_h(s[2]), cfg.conv.out_w(s[3])},
                         data_type(), tag::aBcd16b);
      }
      it = plans.emplace(src_shape, make_plan(src_shape, pin_of(src), dst_pin)).first;
    }
    return it->second;
  }

  void pack_weights(Plan& p) {
    // Read through const references: the non-const accessors would bump the versions.
    const Tensor& weight = this->weight;
    const Tensor& bias = this->bias;
    if (p.weight_version == weight.version() && p.bias_version == bias.version() &&
        p.weight_data == weight.raw())
      return;
    const Conv2dConfig& c = cfg.conv;
    memory::desc plain_w = c.groups == 1
                               ? plain_desc(weight.shape())
                               : memory::desc({c.groups, c.out_channels / c.groups,
                                               c.in_channels / c.groups, c.kernel_h, c.kernel_w},
                                              dt::f32, tag::goihw);
    p.packed_weight = memory(p.pd.weights_desc(), engine());
    reorder_into(memory(plain_w, engine(), const_cast<void*>(weight.raw())), p.packed_weight);
    p.packed_bias = memory(p.pd.bias_desc(), engine());
    reorder_into(wrap(bias), p.packed_bias);
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
    const memory& m = ActivationAccess::mem(src);
    if (m.get_desc() == p.pd.src_desc()) return src;
    return ActivationAccess::adopt_memory(reorder_to(m, p.pd.src_desc()));
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
    memory src_m = reorder_to(ActivationAccess::mem(src), p.pd.src_desc());
    Activation out;
    if (impl_->cfg.add_residual) {
      RESNET_CHECK(res != nullptr, "fused conv: expected a residual input");
      const memory& r = res->mem;
      RESNET_CHECK(r.get_desc().dims() == p.pd.dst_desc().dims(),
                   "fused conv: expected residual " << shape_str(p.pd.dst_desc().dims()) << ", got "
                                                    << shape_str(r.get_desc().dims()));
      // The sum post-op accumulates into dst, so dst starts as (a private copy of) the
      // residual; when the residual is ours, laid out right and read by nobody else
      // (this call holds the only reference), its buffer becomes the output.
      if (!res->borrowed && ActivationAccess::sole_owner(residual) &&
          r.get_desc() == p.pd.dst_desc()) {
        out = residual;
      } else {
        out = ActivationAccess::allocate(p.pd.dst_desc(), pool);
        reorder_into(r, ActivationAccess::mem(out));
      }
    } else {
      out = ActivationAccess::allocate(p.pd.dst_desc(), pool);
    }
    p.prim.execute(stream(), {{DNNL_ARG_SRC, src_m},
                              {DNNL_ARG_WEIGHTS, p.packed_weight},
                              {DNNL_ARG_BIAS, p.packed_bias},
                              {DNNL_ARG_DST, ActivationAccess::mem(out)}});
    stream().wait();
    impl_->last_impl = p.pd.impl_info_str();
    return out;
  });
}

std::string FusedConv2d::implementation() const {
  return impl_->last_impl;
}

}  // namespace resnet::backend
