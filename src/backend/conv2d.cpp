#include "resnet/backend/conv2d.h"

#include <optional>

#include "conv_plan.h"
#include "plan_cache.h"

namespace resnet::backend {

using namespace detail;

struct Conv2dKernel::Impl {
  Conv2dConfig cfg;
  bool winograd = true;
  DType compute = DType::f32;     // f32, or bf16 (mixed precision)
  DType output = DType::f32;      // the forward's output: f32, or bf16 in mixed precision
  DType grad_input = DType::f32;  // backward-data's output: likewise

  struct Plan {
    Shape dst_shape;
    memory::desc weight_plain, bias_plain;
    dnnl::convolution_forward::primitive_desc fwd_pd;
    dnnl::convolution_forward fwd;
    // Backward primitives are created on the first backward call only.
    std::optional<ConvBackwardPlan> bwd_pd;
    std::optional<dnnl::convolution_backward_data> bwd_data;
    std::optional<dnnl::convolution_backward_weights> bwd_weights;
  };
  PlanCache<Plan> plans;

  // Blocked tensors are read and written in their layout (no reorder; in bf16 the input
  // is converted in that layout); plain ones let oneDNN choose, and the kernel reorders
  // at its edges.
  static memory::desc pin(const Shape& shape, Layout layout, DType type) {
    return layout == Layout::plain ? memory::desc() : desc_of(shape, type, layout);
  }

  Plan& plan_for(const Shape& src_shape, Layout src_layout, Layout dst_layout) {
    return plans.get(
        PlanKey(src_shape, src_layout, dst_layout, winograd, compute, output, grad_input), [&] {
          ConvRequest r;
          r.purpose = ConvPurpose::training;
          r.winograd = winograd;
          r.src_shape = src_shape;
          // Mixed precision: bf16 input and weights, f32 accumulation, an f32 or bf16 output.
          r.src_type = r.weight_type = dnnl_type(compute);
          r.dst_type = dnnl_type(output);
          r.bias = cfg.bias;
          r.src_pin = pin(src_shape, src_layout, compute);
          r.dst_pin = pin(conv_dst_shape(cfg, src_shape), dst_layout, output);
          dnnl::convolution_forward::primitive_desc pd = plan_conv_forward(cfg, r);
          return Plan{conv_dst_shape(cfg, src_shape),
                      conv_weight_desc(cfg, dt::f32, false),
                      cfg.bias ? plain_desc({cfg.out_channels}) : memory::desc(),
                      pd,
                      dnnl::convolution_forward(pd),
                      {},
                      {},
                      {}};
        });
  }

  void ensure_backward(Plan& p) {
    if (p.bwd_pd) return;
    p.bwd_pd.emplace(plan_conv_backward(cfg, p.fwd_pd, dnnl_type(grad_input)));
    p.bwd_data.emplace(p.bwd_pd->data);
    p.bwd_weights.emplace(p.bwd_pd->weights);
  }
};

Conv2dKernel::Conv2dKernel(const Conv2dConfig& config) : impl_(std::make_unique<Impl>()) {
  impl_->cfg = config;
}
Conv2dKernel::~Conv2dKernel() = default;

void Conv2dKernel::set_winograd(bool allowed) {
  impl_->winograd = allowed;
}

void Conv2dKernel::set_compute_type(DType type) {
  RESNET_CHECK(type == DType::f32 || type == DType::bf16,
               "Conv2d: expected compute type f32 or bf16, got " << dtype_name(type));
  impl_->compute = type;
  if (type == DType::f32) impl_->output = impl_->grad_input = DType::f32;
}

DType Conv2dKernel::compute_type() const {
  return impl_->compute;
}

namespace {
// An output handed to a batch norm: f32, or bf16 only when the convolution computes in it.
DType checked_handoff_type(const char* what, DType type, DType compute) {
  RESNET_CHECK(type == DType::f32 || (type == DType::bf16 && compute == DType::bf16),
               "Conv2d: expected " << what << " type f32, or bf16 when computing in bf16, got "
                                   << dtype_name(type) << " computing in " << dtype_name(compute));
  return type;
}
}  // namespace

void Conv2dKernel::set_output_type(DType type) {
  impl_->output = checked_handoff_type("output", type, impl_->compute);
}

void Conv2dKernel::set_grad_input_type(DType type) {
  impl_->grad_input = checked_handoff_type("input gradient", type, impl_->compute);
}

Tensor Conv2dKernel::forward(const Tensor& src, const Tensor& weight, const Tensor& bias,
                             Layout dst_layout) {
  return guarded("Conv2d forward", [&] {
    auto& cfg = impl_->cfg;
    Impl::Plan& p = impl_->plan_for(src.shape(), src.layout(), dst_layout);
    Tensor dst = Tensor::empty(p.dst_shape, impl_->output, dst_layout);
    memory src_m = reorder_to(wrap(src), p.fwd_pd.src_desc());
    memory w_m = reorder_to(memory(p.weight_plain, engine(), const_cast<void*>(weight.raw())),
                            p.fwd_pd.weights_desc());
    memory dst_user = wrap(dst);
    const bool dst_direct = p.fwd_pd.dst_desc() == dst_user.get_desc();
    memory dst_m = dst_direct ? dst_user : memory(p.fwd_pd.dst_desc(), engine());
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, src_m}, {DNNL_ARG_WEIGHTS, w_m}, {DNNL_ARG_DST, dst_m}};
    if (cfg.bias) args[DNNL_ARG_BIAS] = reorder_to(wrap(bias), p.fwd_pd.bias_desc());
    execute(p.fwd, args);
    if (!dst_direct) reorder_into(dst_m, dst_user);
    return dst;
  });
}

Tensor Conv2dKernel::backward_data(const Tensor& diff_dst, const Tensor& weight,
                                   const Shape& src_shape, Layout src_layout) {
  return guarded("Conv2d backward", [&] {
    Impl::Plan& p = impl_->plan_for(src_shape, src_layout, diff_dst.layout());
    impl_->ensure_backward(p);
    auto& pd = p.bwd_pd->data;
    Tensor diff_src = Tensor::empty(src_shape, impl_->grad_input, src_layout);
    memory dd_m = reorder_to(wrap(diff_dst), pd.diff_dst_desc());
    memory w_m = reorder_to(memory(p.weight_plain, engine(), const_cast<void*>(weight.raw())),
                            pd.weights_desc());
    memory ds_user = wrap(diff_src);
    const bool direct = pd.diff_src_desc() == ds_user.get_desc();
    memory ds_m = direct ? ds_user : memory(pd.diff_src_desc(), engine());
    execute(*p.bwd_data,
            {{DNNL_ARG_DIFF_DST, dd_m}, {DNNL_ARG_WEIGHTS, w_m}, {DNNL_ARG_DIFF_SRC, ds_m}});
    if (!direct) reorder_into(ds_m, ds_user);
    return diff_src;
  });
}

void Conv2dKernel::backward_weights(const Tensor& diff_dst, const Tensor& src, Tensor& diff_weight,
                                    Tensor& diff_bias) {
  guarded("Conv2d backward", [&] {
    auto& cfg = impl_->cfg;
    Impl::Plan& p = impl_->plan_for(src.shape(), src.layout(), diff_dst.layout());
    impl_->ensure_backward(p);
    auto& pd = p.bwd_pd->weights;
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
    execute(*p.bwd_weights, args);
    add_into(diff_weight, reorder_to(dw_m, p.weight_plain));
    if (cfg.bias && diff_bias.defined()) add_into(diff_bias, reorder_to(*db_m, p.bias_plain));
  });
}

}  // namespace resnet::backend
