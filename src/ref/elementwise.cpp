#include "ref_checks.h"
#include "resnet/ref/kernels.h"

namespace resnet::ref {

namespace {

void check_any_f32(const Tensor& t, const char* who, const char* name) {
  RESNET_CHECK(t.defined(), who << ": expected " << name << " to be defined, got an empty tensor");
  RESNET_CHECK(t.dtype() == DType::f32,
               who << ": expected " << name << " of dtype f32, got " << dtype_name(t.dtype()));
}

}  // namespace

Tensor relu_forward(const Tensor& src) {
  check_any_f32(src, "ref::relu_forward", "src");
  Tensor dst(src.shape());
  const float* x = src.f32();
  float* y = dst.f32();
  // Written as "x <= 0 ? 0 : x" so that NaN propagates, as in PyTorch.
  for (int64_t i = 0; i < src.numel(); ++i) y[i] = x[i] <= 0.f ? 0.f : x[i];
  return dst;
}

Tensor relu_backward(const Tensor& diff_dst, const Tensor& src) {
  const char* who = "ref::relu_backward";
  check_any_f32(src, who, "src");
  detail::check_f32_shape(diff_dst, src.shape(), who, "diff_dst");
  Tensor diff_src(src.shape());
  const float* x = src.f32();
  const float* dy = diff_dst.f32();
  float* dx = diff_src.f32();
  // The subgradient at exactly 0 is 0, as in PyTorch's threshold_backward.
  for (int64_t i = 0; i < src.numel(); ++i) dx[i] = x[i] > 0.f ? dy[i] : 0.f;
  return diff_src;
}

Tensor add(const Tensor& a, const Tensor& b) {
  const char* who = "ref::add";
  check_any_f32(a, who, "a");
  detail::check_f32_shape(b, a.shape(), who, "b");
  Tensor dst(a.shape());
  const float* pa = a.f32();
  const float* pb = b.f32();
  float* y = dst.f32();
  for (int64_t i = 0; i < a.numel(); ++i) y[i] = pa[i] + pb[i];
  return dst;
}

}  // namespace resnet::ref
