#include "resnet/backend/batchnorm2d.h"

#include <cmath>
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

// Training-mode statistics and the backward pass are our own loops rather than
// oneDNN's: PyTorch's CPU batch norm accumulates its per-channel sums in double
// (at::acc_type<float> is double on CPU), and oneDNN's in float. With few values per
// channel (a deep stage at a small input) the gradient sums cancel badly, and float
// accumulation then misses PyTorch's numbers by percents.
Tensor BatchNorm2dKernel::forward_train(const Tensor& src, const Tensor& weight, const Tensor& bias,
                                        Tensor& batch_mean, Tensor& batch_var) {
  const int64_t n = src.dim(0), c = src.dim(1), hw = src.dim(2) * src.dim(3);
  const double count = static_cast<double>(n * hw);
  Tensor dst(src.shape());
  const float* x = src.f32();
  float* y = dst.f32();
  const float* gamma = weight.f32();
  const float* beta = bias.f32();
  float* mean_out = batch_mean.f32();
  float* var_out = batch_var.f32();
  const double eps = impl_->eps;
#pragma omp parallel for schedule(static)
  for (int64_t ch = 0; ch < c; ++ch) {
    double sum = 0.0;
    for (int64_t b = 0; b < n; ++b) {
      const float* p = x + (b * c + ch) * hw;
#pragma omp simd reduction(+ : sum)
      for (int64_t i = 0; i < hw; ++i) sum += p[i];
    }
    const double mean = sum / count;
    double sq = 0.0;
    for (int64_t b = 0; b < n; ++b) {
      const float* p = x + (b * c + ch) * hw;
#pragma omp simd reduction(+ : sq)
      for (int64_t i = 0; i < hw; ++i) {
        const double d = p[i] - mean;
        sq += d * d;
      }
    }
    const double var = sq / count;
    const double invstd = 1.0 / std::sqrt(var + eps);
    const float scale = static_cast<float>(gamma[ch] * invstd);
    const float shift = static_cast<float>(beta[ch] - mean * gamma[ch] * invstd);
    for (int64_t b = 0; b < n; ++b) {
      const float* p = x + (b * c + ch) * hw;
      float* q = y + (b * c + ch) * hw;
      for (int64_t i = 0; i < hw; ++i) q[i] = p[i] * scale + shift;
    }
    mean_out[ch] = static_cast<float>(mean);
    var_out[ch] = static_cast<float>(var);
  }
  return dst;
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
                                   const Tensor& /*bias*/, const Tensor& mean, const Tensor& var,
                                   bool use_global_stats, Tensor& diff_weight, Tensor& diff_bias) {
  const int64_t n = src.dim(0), c = src.dim(1), hw = src.dim(2) * src.dim(3);
  const double count = static_cast<double>(n * hw);
  Tensor diff_src(src.shape());
  const float* x = src.f32();
  const float* dy = diff_dst.f32();
  float* dx = diff_src.f32();
  const float* gamma = weight.f32();
  const float* mu = mean.f32();
  const float* sigma2 = var.f32();
  float* dgamma = diff_weight.f32();
  float* dbeta = diff_bias.f32();
  const double eps = impl_->eps;
#pragma omp parallel for schedule(static)
  for (int64_t ch = 0; ch < c; ++ch) {
    const double m = mu[ch];
    const double invstd = 1.0 / std::sqrt(static_cast<double>(sigma2[ch]) + eps);
    double sum_dy = 0.0, sum_dy_xmu = 0.0;
    for (int64_t b = 0; b < n; ++b) {
      const float* px = x + (b * c + ch) * hw;
      const float* pdy = dy + (b * c + ch) * hw;
#pragma omp simd reduction(+ : sum_dy, sum_dy_xmu)
      for (int64_t i = 0; i < hw; ++i) {
        sum_dy += pdy[i];
        sum_dy_xmu += pdy[i] * (px[i] - m);
      }
    }
    // d/dx of gamma * xhat + beta; with batch statistics, xhat's own dependence on the
    // mean and variance subtracts the projections onto 1 and xhat.
    const double g = gamma[ch] * invstd;
    const double k = use_global_stats ? 0.0 : sum_dy_xmu * invstd * invstd / count;
    const double mean_dy = use_global_stats ? 0.0 : sum_dy / count;
    for (int64_t b = 0; b < n; ++b) {
      const float* px = x + (b * c + ch) * hw;
      const float* pdy = dy + (b * c + ch) * hw;
      float* pdx = dx + (b * c + ch) * hw;
      for (int64_t i = 0; i < hw; ++i)
        pdx[i] = static_cast<float>(g * (pdy[i] - mean_dy - (px[i] - m) * k));
    }
    dgamma[ch] += static_cast<float>(sum_dy_xmu * invstd);
    dbeta[ch] += static_cast<float>(sum_dy);
  }
  return diff_src;
}

}  // namespace resnet::backend
