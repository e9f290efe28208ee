#include "ref_checks.h"
#include "resnet/ref/kernels.h"

namespace resnet::ref {

Tensor linear_forward(const Tensor& src, const Tensor& weight, const Tensor& bias) {
  const char* who = "ref::linear_forward";
  detail::check_f32(src, 2, who, "src");
  detail::check_f32(weight, 2, who, "weight");
  const int64_t N = src.dim(0), IN = src.dim(1), OUT = weight.dim(0);
  RESNET_CHECK(weight.dim(1) == IN, who << ": expected weight with IN = " << IN << " columns, got "
                                        << weight.shape_str());
  if (bias.defined()) detail::check_f32_shape(bias, {OUT}, who, "bias");
  Tensor dst({N, OUT});
  const float* x = src.f32();
  const float* w = weight.f32();
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t o = 0; o < OUT; ++o) {
      double acc = bias.defined() ? bias.f32()[o] : 0.0;
      for (int64_t i = 0; i < IN; ++i) acc += double(x[n * IN + i]) * w[o * IN + i];
      dst.f32()[n * OUT + o] = static_cast<float>(acc);
    }
  }
  return dst;
}

Tensor linear_backward_data(const Tensor& diff_dst, const Tensor& weight) {
  const char* who = "ref::linear_backward_data";
  detail::check_f32(diff_dst, 2, who, "diff_dst");
  detail::check_f32(weight, 2, who, "weight");
  const int64_t N = diff_dst.dim(0), OUT = diff_dst.dim(1), IN = weight.dim(1);
  RESNET_CHECK(weight.dim(0) == OUT, who << ": expected weight with OUT = " << OUT << " rows, got "
                                         << weight.shape_str());
  Tensor diff_src({N, IN});
  const float* dy = diff_dst.f32();
  const float* w = weight.f32();
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t i = 0; i < IN; ++i) {
      double acc = 0.0;
      for (int64_t o = 0; o < OUT; ++o) acc += double(dy[n * OUT + o]) * w[o * IN + i];
      diff_src.f32()[n * IN + i] = static_cast<float>(acc);
    }
  }
  return diff_src;
}

Tensor linear_backward_weights(const Tensor& diff_dst, const Tensor& src, Tensor* diff_bias) {
  const char* who = "ref::linear_backward_weights";
  detail::check_f32(diff_dst, 2, who, "diff_dst");
  detail::check_f32(src, 2, who, "src");
  const int64_t N = src.dim(0), IN = src.dim(1), OUT = diff_dst.dim(1);
  RESNET_CHECK(diff_dst.dim(0) == N, who << ": expected diff_dst with N = " << N << " rows, got "
                                         << diff_dst.shape_str());
  Tensor diff_weight({OUT, IN});
  const float* dy = diff_dst.f32();
  const float* x = src.f32();
  for (int64_t o = 0; o < OUT; ++o) {
    for (int64_t i = 0; i < IN; ++i) {
      double acc = 0.0;
      for (int64_t n = 0; n < N; ++n) acc += double(dy[n * OUT + o]) * x[n * IN + i];
      diff_weight.f32()[o * IN + i] = static_cast<float>(acc);
    }
  }
  if (diff_bias != nullptr) {
    Tensor db({OUT});
    for (int64_t o = 0; o < OUT; ++o) {
      double acc = 0.0;
      for (int64_t n = 0; n < N; ++n) acc += dy[n * OUT + o];
      db.f32()[o] = static_cast<float>(acc);
    }
    *diff_bias = db;
  }
  return diff_weight;
}

}  // namespace resnet::ref
