#include "resnet/backend/conv2d.h"

#include <optional>

#include "dnnl_context.h"

namespace resnet::backend {

using namespace detail;

namespace {

void add_into(Tensor& acc, const memory& m) {
  // `m` is plain and has acc's shape; accumulate so that repeated backward passes sum.
  const float* src = static_cast<const float*>(m.get_data_handle());
  float* dst = acc.f32();
  const int64_t n = acc.numel();
#pragma omp parallel for simd if (n > 65536)
  for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}

}  // namespace

struct Conv2dKernel::Impl {
  Conv2dConfig cfg;

  struct Plan {
    memory::desc src_plain, dst_plain, weight_plain, bias_plain;
    dnnl::convolution_forward::primitive_desc fwd_pd;
    dnnl::convolution_forward fwd;
    // Backward primitives are created on the first backward call only.
    std::optional<dnnl::convolution_backward_data::primitive_desc> bwd_data_pd;
    std::optional<dnnl::convolution_backward_data> bwd_data;
    std::optional<dnnl::convolution_backward_weights::primitive_desc> bwd_weights_pd;
    std::optional<dnnl::convolution_backward_weights> bwd_weights;
  };
  PlanCache<Plan> plans;

  memory::dims strides() const { return {cfg.stride_h, cfg.stride_w}; }
  // oneDNN counts dilation from 0 (0 = dense).
  memory::dims dilates() const { return {cfg.dilation_h - 1, cfg.dilation_w - 1}; }
  memory::dims padding_l() const { return {cfg.pad_h, cfg.pad_w}; }
  memory::dims padding_r(int64_t h, int64_t w) const {
    // Right padding that makes oneDNN's output size equal PyTorch's floor division.
    int64_t oh = cfg.out_h(h), ow = cfg.out_w(w);
    int64_t rh = (oh - 1) * cfg.stride_h + cfg.dilation_h * (cfg.kernel_h - 1) + 1 - h - cfg.pad_h;
    int64_t rw = (ow - 1) * cfg.stride_w + cfg.dilation_w * (cfg.kernel_w - 1) + 1 - w - cfg.pad_w;
    return {rh, rw};
  }
  Shape weight_shape() const {
    return {cfg.out_channels, cfg.in_channels / cfg.groups, cfg.kernel_h, cfg.kernel_w};
  }
  // oneDNN's view of the weights: grouped convs carry a leading G dimension.
  memory::desc weight_desc(tag layout_any_or_plain) const {
    if (cfg.groups == 1) return memory::desc(to_dims(weight_shape()), dt::f32, layout_any_or_plain);
    memory::dims d = {cfg.groups, cfg.out_channels / cfg.groups, cfg.in_channels / cfg.groups,
                      cfg.kernel_h, cfg.kernel_w};
    return memory::desc(d, dt::f32, layout_any_or_plain == tag::any ? tag::any : tag::goihw);
  }

  Plan& plan_for(const Shape& src_shape) {
    auto it = plans.find(src_shape);
    if (it != plans.end()) return it->second;
    const int64_t n = src_shape[0], h = src_shape[2], w = src_shape[3];
    Shape dst_shape = {n, cfg.out_channels, cfg.out_h(h), cfg.out_w(w)};
    auto any = [](const Shape& s) { return memory::desc(to_dims(s), dt::f32, tag::any); };
    memory::desc bias_any =
        cfg.bias ? memory::desc({cfg.out_channels}, dt::f32, tag::any) : memory::desc();
    dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_training,
                                      dnnl::algorithm::convolution_direct, any(src_shape),
                                      weight_desc(tag::any), bias_any, any(dst_shape), strides(),
                                      dilates(), padding_l(), padding_r(h, w));
    dnnl::convolution_forward::primitive_desc pd(d, engine());
    Plan p{plain_desc(src_shape),
           plain_desc(dst_shape),
           weight_desc(tag::oihw),
           cfg.bias ? plain_desc({cfg.out_channels}) : memory::desc(),
           pd,
           dnnl::convolution_forward(pd),
           {},
           {},
           {},
           {}};
    return plans.emplace(src_shape, std::move(p)).first->second;
  }

  void ensure_backward(Plan& p, const Shape& src_shape) {
    if (p.bwd_data) return;
    const int64_t h = src_shape[2], w = src_shape[3];
    auto any = [](const memory::desc& md) { return memory::desc(md.dims(), dt::f32, tag::any); };
    dnnl::convolution_backward_data::desc dd(dnnl::algorithm::convolution_direct, any(p.src_plain),
                                             weight_desc(tag::any), any(p.dst_plain), strides(),
                                             dilates(), padding_l(), padding_r(h, w));
    p.bwd_data_pd.emplace(dd, engine(), p.fwd_pd);
    p.bwd_data.emplace(*p.bwd_data_pd);
    memory::desc bias_any =
        cfg.bias ? memory::desc({cfg.out_channels}, dt::f32, tag::any) : memory::desc();
    dnnl::convolution_backward_weights::desc wd(
        dnnl::algorithm::convolution_direct, any(p.src_plain), weight_desc(tag::any), bias_any,
        any(p.dst_plain), strides(), dilates(), padding_l(), padding_r(h, w));
    p.bwd_weights_pd.emplace(wd, engine(), p.fwd_pd);
    p.bwd_weights.emplace(*p.bwd_weights_pd);
  }
};

Conv2dKernel::Conv2dKernel(const Conv2dConfig& config) : impl_(std::make_unique<Impl>()) {
  impl_->cfg = config;
}
Conv2dKernel::~Conv2dKernel() = default;

Tensor Conv2dKernel::forward(const Tensor& src, const Tensor& weight, const Tensor& bias) {
  return guarded("Conv2d forward", [&] {
    auto& cfg = impl_->cfg;
    Impl::Plan& p = impl_->plan_for(src.shape());
    Tensor dst(p.dst_plain.dims());
    memory src_m = reorder_to(wrap(src), p.fwd_pd.src_desc());
    memory w_m = reorder_to(memory(p.weight_plain, engine(), const_cast<void*>(weight.raw())),
                            p.fwd_pd.weights_desc());
    memory dst_plain_m = wrap(dst);
    bool dst_direct = p.fwd_pd.dst_desc() == p.dst_plain;
    memory dst_m = dst_direct ? dst_plain_m : memory(p.fwd_pd.dst_desc(), engine());
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, src_m}, {DNNL_ARG_WEIGHTS, w_m}, {DNNL_ARG_DST, dst_m}};
    if (cfg.bias) args[DNNL_ARG_BIAS] = reorder_to(wrap(bias), p.fwd_pd.bias_desc());
    p.fwd.execute(stream(), args);
    if (!dst_direct) reorder_into(dst_m, dst_plain_m);
    stream().wait();
    return dst;
  });
}

Tensor Conv2dKernel::backward_data(const Tensor& diff_dst, const Tensor& weight,
                                   const Shape& src_shape) {
  return guarded("Conv2d backward", [&] {
    Impl::Plan& p = impl_->plan_for(src_shape);
    impl_->ensure_backward(p, src_shape);
    auto& pd = *p.bwd_data_pd;
    Tensor diff_src(src_shape);
    memory dd_m = reorder_to(wrap(diff_dst), pd.diff_dst_desc());
    memory w_m = reorder_to(memory(p.weight_plain, engine(), const_cast<void*>(weight.raw())),
                            pd.weights_desc());
    memory ds_plain = wrap(diff_src);
    bool direct = pd.diff_src_desc() == p.src_plain;
    memory ds_m = direct ? ds_plain : memory(pd.diff_src_desc(), engine());
    p.bwd_data->execute(
        stream(), {{DNNL_ARG_DIFF_DST, dd_m}, {DNNL_ARG_WEIGHTS, w_m}, {DNNL_ARG_DIFF_SRC, ds_m}});
    if (!direct) reorder_into(ds_m, ds_plain);
    stream().wait();
    return diff_src;
  });
}

void Conv2dKernel::backward_weights(const Tensor& diff_dst, const Tensor& src, Tensor& diff_weight,
                                    Tensor& diff_bias) {
  guarded("Conv2d backward", [&] {
    auto& cfg = impl_->cfg;
    Impl::Plan& p = impl_->plan_for(src.shape());
    impl_->ensure_backward(p, src.shape());
    auto& pd = *p.bwd_weights_pd;
    memory src_m = reorder_to(wrap(src), pd.src_desc());
    memory dd_m = reorder_to(wrap(diff_dst), pd.diff_dst_desc());
    memory dw_m(pd.diff_weights_desc(), engine());
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, src_m}, {DNNL_ARG_DIFF_DST, dd_m}, {DNNL_ARG_DIFF_WEIGHTS, dw_m}};
    std::optional<memory> db_m;
    if (cfg.bias) {
      db_m.emplace(pd.diff_bias_desc(), engine());
      args[DNNL_ARG_DIFF_BIAS] = *db_m;
    }
    p.bwd_weights->execute(stream(), args);
    add_into(diff_weight, reorder_to(dw_m, p.weight_plain));
    if (cfg.bias && diff_bias.defined()) add_into(diff_bias, reorder_to(*db_m, p.bias_plain));
    stream().wait();
  });
}

}  // namespace resnet::backend
