#include <cmath>
#include <initializer_list>
#include <utility>
#include <vector>

#include "ref_checks.h"
#include "resnet/ref/kernels.h"

namespace resnet::ref {

namespace {

struct BnGeometry {
  int64_t N, C, HW;
};

// Checks src [N, C, H, W] and every per-channel tensor given in `per_channel` against C.
BnGeometry bn_geometry(const char* who, const Tensor& src,
                       std::initializer_list<std::pair<const Tensor*, const char*>> per_channel,
                       double eps) {
  detail::check_f32(src, 4, who, "src");
  const BnGeometry g{src.dim(0), src.dim(1), src.dim(2) * src.dim(3)};
  for (const auto& [t, name] : per_channel) detail::check_f32_shape(*t, {g.C}, who, name);
  RESNET_CHECK(eps >= 0.0, who << ": expected eps >= 0, got " << eps);
  return g;
}

// x[n, c, hw] in a flat NCHW buffer.
inline int64_t at(const BnGeometry& g, int64_t n, int64_t c, int64_t i) {
  return (n * g.C + c) * g.HW + i;
}

// Sums of dy and dy * xhat over N, H, W per channel: the two reductions every batch norm
// backward needs (they are diff_bias and diff_weight).
void reduce_dy(const BnGeometry& g, const float* dy, const float* x, const float* mean,
               const std::vector<double>& inv_std, std::vector<double>& sum_dy,
               std::vector<double>& sum_dy_xhat) {
  sum_dy.assign(static_cast<size_t>(g.C), 0.0);
  sum_dy_xhat.assign(static_cast<size_t>(g.C), 0.0);
  for (int64_t c = 0; c < g.C; ++c) {
    for (int64_t n = 0; n < g.N; ++n) {
      for (int64_t i = 0; i < g.HW; ++i) {
        const int64_t k = at(g, n, c, i);
        sum_dy[c] += dy[k];
        sum_dy_xhat[c] += double(dy[k]) * (double(x[k]) - mean[c]) * inv_std[c];
      }
    }
  }
}

Tensor to_tensor(const std::vector<double>& v) {
  Tensor t({static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) t.f32()[i] = static_cast<float>(v[i]);
  return t;
}

std::vector<double> inverse_std(const Tensor& var, double eps) {
  std::vector<double> inv(static_cast<size_t>(var.numel()));
  for (size_t c = 0; c < inv.size(); ++c) inv[c] = 1.0 / std::sqrt(double(var.f32()[c]) + eps);
  return inv;
}

}  // namespace

Tensor batchnorm2d_forward_eval(const Tensor& src, const Tensor& weight, const Tensor& bias,
                                const Tensor& mean, const Tensor& var, double eps) {
  const BnGeometry g =
      bn_geometry("ref::batchnorm2d_forward_eval", src,
                  {{&weight, "weight"}, {&bias, "bias"}, {&mean, "mean"}, {&var, "var"}}, eps);
  const std::vector<double> inv_std = inverse_std(var, eps);
  Tensor dst(src.shape());
  const float* x = src.f32();
  float* y = dst.f32();
  for (int64_t n = 0; n < g.N; ++n) {
    for (int64_t c = 0; c < g.C; ++c) {
      const double scale = weight.f32()[c] * inv_std[c];
      for (int64_t i = 0; i < g.HW; ++i) {
        const int64_t k = at(g, n, c, i);
        y[k] = static_cast<float>((x[k] - double(mean.f32()[c])) * scale + bias.f32()[c]);
      }
    }
  }
  return dst;
}

BatchNormTrainResult batchnorm2d_forward_train(const Tensor& src, const Tensor& weight,
                                               const Tensor& bias, double eps) {
  const char* who = "ref::batchnorm2d_forward_train";
  const BnGeometry g = bn_geometry(who, src, {{&weight, "weight"}, {&bias, "bias"}}, eps);
  const int64_t M = g.N * g.HW;
  RESNET_CHECK(M > 0,
               who << ": expected at least one value per channel, got src " << src.shape_str());
  // Two passes (mean, then squared deviations) rather than E[x^2] - E[x]^2, which cancels
  // badly when |mean| >> std; the oracle should not carry that error.
  std::vector<double> mean(static_cast<size_t>(g.C), 0.0), var(static_cast<size_t>(g.C), 0.0);
  const float* x = src.f32();
  for (int64_t c = 0; c < g.C; ++c) {
    for (int64_t n = 0; n < g.N; ++n)
      for (int64_t i = 0; i < g.HW; ++i) mean[c] += x[at(g, n, c, i)];
    mean[c] /= double(M);
    for (int64_t n = 0; n < g.N; ++n) {
      for (int64_t i = 0; i < g.HW; ++i) {
        const double d = x[at(g, n, c, i)] - mean[c];
        var[c] += d * d;
      }
    }
    var[c] /= double(M);  // biased: PyTorch normalizes with it in training mode
  }

  BatchNormTrainResult r;
  r.dst = Tensor(src.shape());
  float* y = r.dst.f32();
  for (int64_t n = 0; n < g.N; ++n) {
    for (int64_t c = 0; c < g.C; ++c) {
      // Normalize with the double statistics, not the rounded f32 ones we return.
      const double scale = weight.f32()[c] / std::sqrt(var[c] + eps);
      for (int64_t i = 0; i < g.HW; ++i) {
        const int64_t k = at(g, n, c, i);
        y[k] = static_cast<float>((x[k] - mean[c]) * scale + bias.f32()[c]);
      }
    }
  }
  r.mean = to_tensor(mean);
  r.var = to_tensor(var);
  return r;
}

BatchNormBackwardResult batchnorm2d_backward_train(const Tensor& diff_dst, const Tensor& src,
                                                   const Tensor& weight, const Tensor& mean,
                                                   const Tensor& var, double eps) {
  const char* who = "ref::batchnorm2d_backward_train";
  const BnGeometry g =
      bn_geometry(who, src, {{&weight, "weight"}, {&mean, "mean"}, {&var, "var"}}, eps);
  detail::check_f32_shape(diff_dst, src.shape(), who, "diff_dst");
  const double M = double(g.N * g.HW);
  const std::vector<double> inv_std = inverse_std(var, eps);
  std::vector<double> sum_dy, sum_dy_xhat;
  reduce_dy(g, diff_dst.f32(), src.f32(), mean.f32(), inv_std, sum_dy, sum_dy_xhat);

  // With xhat = (x - mean) * inv_std and y = w * xhat + b, differentiating through mean
  // and var (both functions of every x in the channel) gives
  //   dx = w * inv_std / M * (M * dy - sum(dy) - xhat * sum(dy * xhat)).
  BatchNormBackwardResult r;
  r.diff_src = Tensor(src.shape());
  const float* x = src.f32();
  const float* dy = diff_dst.f32();
  float* dx = r.diff_src.f32();
  for (int64_t n = 0; n < g.N; ++n) {
    for (int64_t c = 0; c < g.C; ++c) {
      const double k_scale = weight.f32()[c] * inv_std[c] / M;
      for (int64_t i = 0; i < g.HW; ++i) {
        const int64_t k = at(g, n, c, i);
        const double xhat = (double(x[k]) - mean.f32()[c]) * inv_std[c];
        dx[k] = static_cast<float>(k_scale * (M * dy[k] - sum_dy[c] - xhat * sum_dy_xhat[c]));
      }
    }
  }
  r.diff_weight = to_tensor(sum_dy_xhat);
  r.diff_bias = to_tensor(sum_dy);
  return r;
}

BatchNormBackwardResult batchnorm2d_backward_eval(const Tensor& diff_dst, const Tensor& src,
                                                  const Tensor& weight, const Tensor& mean,
                                                  const Tensor& var, double eps) {
  const char* who = "ref::batchnorm2d_backward_eval";
  const BnGeometry g =
      bn_geometry(who, src, {{&weight, "weight"}, {&mean, "mean"}, {&var, "var"}}, eps);
  detail::check_f32_shape(diff_dst, src.shape(), who, "diff_dst");
  const std::vector<double> inv_std = inverse_std(var, eps);
  std::vector<double> sum_dy, sum_dy_xhat;
  reduce_dy(g, diff_dst.f32(), src.f32(), mean.f32(), inv_std, sum_dy, sum_dy_xhat);

  // Constant statistics make the layer affine per channel: dx = dy * w * inv_std.
  BatchNormBackwardResult r;
  r.diff_src = Tensor(src.shape());
  const float* dy = diff_dst.f32();
  float* dx = r.diff_src.f32();
  for (int64_t n = 0; n < g.N; ++n) {
    for (int64_t c = 0; c < g.C; ++c) {
      const double scale = weight.f32()[c] * inv_std[c];
      for (int64_t i = 0; i < g.HW; ++i) {
        const int64_t k = at(g, n, c, i);
        dx[k] = static_cast<float>(dy[k] * scale);
      }
    }
  }
  r.diff_weight = to_tensor(sum_dy_xhat);
  r.diff_bias = to_tensor(sum_dy);
  return r;
}

}  // namespace resnet::ref
