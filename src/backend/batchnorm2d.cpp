#include "resnet/backend/batchnorm2d.h"

#include <optional>

#include "dnnl_context.h"

namespace resnet::backend {

using namespace detail;

struct BatchNorm2dKernel::Impl {
  double eps;
  struct Plan {
    std::optional<dnnl::batch_normalization_forward::primitive_desc> pd;
    std::optional<dnnl::batch_normalization_forward> prim;
    std::optional<dnnl::batch_normalization_backward::primitive_desc> bwd_pd;
    std::optional<dnnl::batch_normalization_backward> bwd;
  };
  // Keyed by shape plus a mode tag: train / eval forward, and the backward of each.
  PlanCache<Plan> plans;

  static dnnl::normalization_flags flags(bool global_stats) {
    auto f = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
    if (global_stats) f = f | dnnl::normalization_flags::use_global_stats;
    return f;
  }

  Plan& forward_plan(const Shape& shape, bool global_stats) {
    Shape key = shape;
    key.push_back(global_stats ? 1 : 0);
    Plan& p = plans[key];
    if (!p.prim) {
      auto prop =
          global_stats ? dnnl::prop_kind::forward_inference : dnnl::prop_kind::forward_training;
      dnnl::batch_normalization_forward::desc d(prop, plain_desc(shape), static_cast<float>(eps),
                                                flags(global_stats));
      p.pd.emplace(d, engine());
      p.prim.emplace(*p.pd);
    }
    return p;
  }

  Plan& backward_plan(const Shape& shape, bool global_stats) {
    Shape key = shape;
    key.push_back(global_stats ? 3 : 2);
    Plan& p = plans[key];
    if (!p.bwd) {
      // The backward needs a forward_training hint with the same flags.
      dnnl::batch_normalization_forward::desc fd(dnnl::prop_kind::forward_training,
                                                 plain_desc(shape), static_cast<float>(eps),
                                                 flags(global_stats));
      p.pd.emplace(fd, engine());
      dnnl::batch_normalization_backward::desc bd(dnnl::prop_kind::backward, plain_desc(shape),
                                                  plain_desc(shape), static_cast<float>(eps),
                                                  flags(global_stats));
      p.bwd_pd.emplace(bd, engine(), *p.pd);
      p.bwd.emplace(*p.bwd_pd);
    }
    return p;
  }
};

BatchNorm2dKernel::BatchNorm2dKernel(double eps) : impl_(std::make_unique<Impl>()) {
  impl_->eps = eps;
}
BatchNorm2dKernel::~BatchNorm2dKernel() = default;

Tensor BatchNorm2dKernel::forward_train(const Tensor& src, const Tensor& weight, const Tensor& bias,
                                        Tensor& batch_mean, Tensor& batch_var) {
  return guarded("BatchNorm2d forward", [&] {
    auto& p = impl_->forward_plan(src.shape(), false);
    Tensor dst(src.shape());
    p.prim->execute(stream(), {{DNNL_ARG_SRC, wrap(src)},
                               {DNNL_ARG_DST, wrap(dst)},
                               {DNNL_ARG_SCALE, wrap(weight)},
                               {DNNL_ARG_SHIFT, wrap(bias)},
                               {DNNL_ARG_MEAN, wrap(batch_mean)},
                               {DNNL_ARG_VARIANCE, wrap(batch_var)}});
    stream().wait();
    return dst;
  });
}

Tensor BatchNorm2dKernel::forward_eval(const Tensor& src, const Tensor& weight, const Tensor& bias,
                                       const Tensor& mean, const Tensor& var) {
  return guarded("BatchNorm2d forward", [&] {
    auto& p = impl_->forward_plan(src.shape(), true);
    Tensor dst(src.shape());
    p.prim->execute(stream(), {{DNNL_ARG_SRC, wrap(src)},
                               {DNNL_ARG_DST, wrap(dst)},
                               {DNNL_ARG_SCALE, wrap(weight)},
                               {DNNL_ARG_SHIFT, wrap(bias)},
                               {DNNL_ARG_MEAN, wrap(mean)},
                               {DNNL_ARG_VARIANCE, wrap(var)}});
    stream().wait();
    return dst;
  });
}

Tensor BatchNorm2dKernel::backward(const Tensor& diff_dst, const Tensor& src, const Tensor& weight,
                                   const Tensor& bias, const Tensor& mean, const Tensor& var,
                                   bool use_global_stats, Tensor& diff_weight, Tensor& diff_bias) {
  return guarded("BatchNorm2d backward", [&] {
    auto& p = impl_->backward_plan(src.shape(), use_global_stats);
    Tensor diff_src(src.shape());
    const int64_t c = weight.numel();
    Tensor dscale({c}), dshift({c});
    p.bwd->execute(stream(), {{DNNL_ARG_SRC, wrap(src)},
                              {DNNL_ARG_DIFF_DST, wrap(diff_dst)},
                              {DNNL_ARG_SCALE, wrap(weight)},
                              {DNNL_ARG_SHIFT, wrap(bias)},
                              {DNNL_ARG_MEAN, wrap(mean)},
                              {DNNL_ARG_VARIANCE, wrap(var)},
                              {DNNL_ARG_DIFF_SRC, wrap(diff_src)},
                              {DNNL_ARG_DIFF_SCALE, wrap(dscale)},
                              {DNNL_ARG_DIFF_SHIFT, wrap(dshift)}});
    stream().wait();
    for (int64_t i = 0; i < c; ++i) {
      diff_weight.f32()[i] += dscale.f32()[i];
      diff_bias.f32()[i] += dshift.f32()[i];
    }
    return diff_src;
  });
}

}  // namespace resnet::backend
