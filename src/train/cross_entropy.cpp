#include "resnet/train/cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "check_labels.h"
#include "resnet/core/error.h"

namespace resnet::train {

CrossEntropyResult cross_entropy(const Tensor& logits, std::span<const int64_t> labels,
                                 double label_smoothing) {
  detail::check_logits_and_labels("cross_entropy", logits, labels);
  RESNET_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0,
               "cross_entropy: expected label_smoothing in [0, 1], got " << label_smoothing);
  const int64_t n = logits.dim(0), k = logits.dim(1);
  const double eps = label_smoothing;
  const double off_target = eps / double(k);  // t_ij for j != y_i
  const double inv_n = 1.0 / double(n);

  CrossEntropyResult result;
  result.grad_logits = Tensor({n, k});
  const float* z = logits.f32();
  float* dz = result.grad_logits.f32();
  std::vector<double> e(static_cast<size_t>(k));
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const float* zi = z + i * k;
    const double m = *std::max_element(zi, zi + k);
    double sum_exp = 0.0, sum_z = 0.0;
    for (int64_t j = 0; j < k; ++j) {
      e[j] = std::exp(double(zi[j]) - m);
      sum_exp += e[j];
      sum_z += double(zi[j]);
    }
    const double lse = m + std::log(sum_exp);
    const int64_t y = labels[i];
    const double nll = lse - double(zi[y]);
    // -(1/K) sum_j log p_ij = lse - mean_j z_ij
    const double smooth = lse - sum_z / double(k);
    total += (1.0 - eps) * nll + eps * smooth;
    float* dzi = dz + i * k;
    for (int64_t j = 0; j < k; ++j) {
      const double target = (j == y ? 1.0 - eps : 0.0) + off_target;
      dzi[j] = static_cast<float>((e[j] / sum_exp - target) * inv_n);
    }
  }
  result.loss = total * inv_n;
  return result;
}

CrossEntropyResult cross_entropy_soft(const Tensor& logits, const Tensor& targets,
                                      double label_smoothing) {
  RESNET_CHECK(logits.defined() && logits.rank() == 2 && logits.dtype() == DType::f32 &&
                   logits.dim(0) > 0 && logits.dim(1) > 0,
               "cross_entropy: expected f32 logits [N, K] with N, K >= 1, got "
                   << (logits.defined() ? logits.shape_str() : std::string("none")));
  RESNET_CHECK(
      targets.defined() && targets.dtype() == DType::f32 && targets.shape() == logits.shape(),
      "cross_entropy: expected f32 soft targets "
          << logits.shape_str() << ", got "
          << (targets.defined() ? targets.shape_str() : std::string("none")));
  RESNET_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0,
               "cross_entropy: expected label_smoothing in [0, 1], got " << label_smoothing);
  const int64_t n = logits.dim(0), k = logits.dim(1);
  const double eps = label_smoothing, inv_n = 1.0 / double(n);
  CrossEntropyResult result;
  result.grad_logits = Tensor({n, k});
  const float* z = logits.f32();
  const float* q = targets.f32();
  float* dz = result.grad_logits.f32();
  std::vector<double> e(static_cast<size_t>(k)), t(static_cast<size_t>(k));
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const float* zi = z + i * k;
    const float* qi = q + i * k;
    const double m = *std::max_element(zi, zi + k);
    double sum_exp = 0.0, sum_t = 0.0;
    for (int64_t j = 0; j < k; ++j) {
      RESNET_CHECK(std::isfinite(qi[j]) && qi[j] >= 0.f, "cross_entropy: soft target ["
                                                             << i << ", " << j << "] is " << qi[j]
                                                             << " (expected finite and >= 0)");
      e[j] = std::exp(double(zi[j]) - m);
      sum_exp += e[j];
      t[j] = (1.0 - eps) * double(qi[j]) + eps / double(k);
      sum_t += t[j];
    }
    const double lse = m + std::log(sum_exp);
    float* dzi = dz + i * k;
    for (int64_t j = 0; j < k; ++j) {
      total += t[j] * (lse - double(zi[j]));
      dzi[j] = static_cast<float>((e[j] / sum_exp * sum_t - t[j]) * inv_n);
    }
  }
  result.loss = total * inv_n;
  return result;
}

}  // namespace resnet::train
