#include "resnet/backend/shortcut_pad.h"

#include "resnet/core/error.h"
#include "thread_count.h"

namespace resnet::backend {

namespace {

// y's shape for x, checking what both directions rely on.
Shape padded_shape(const char* who, const Shape& x, int64_t stride_h, int64_t stride_w,
                   int64_t before, int64_t after) {
  RESNET_CHECK(x.size() == 4 && stride_h > 0 && stride_w > 0 && before >= 0 && after >= 0,
               who << ": expected a 4-D input, positive strides and non-negative channel padding, "
                      "got input "
                   << shape_str(x) << ", strides (" << stride_h << ", " << stride_w
                   << "), padding (" << before << ", " << after << ")");
  return {x[0], x[1] + before + after, (x[2] + stride_h - 1) / stride_h,
          (x[3] + stride_w - 1) / stride_w};
}

void check_plain_f32(const char* who, const char* name, const Tensor& t) {
  RESNET_CHECK(t.defined() && t.is_plain() && t.dtype() == DType::f32,
               who << ": expected a plain f32 " << name << ", got "
                   << (t.defined() ? t.shape_str() : std::string("an undefined tensor")));
}

// Calls copy(x_index, y_index) for every element the shortcut keeps: channel ch of x at
// row i * stride_h, column j * stride_w is channel ch + before of y at row i, column j.
// Both directions walk the same pairs; only which side is read differs.
template <typename Copy>
void for_each_kept(const Shape& x, const Shape& y, int64_t stride_h, int64_t stride_w,
                   int64_t before, Copy copy) {
  const int64_t n = x[0], c = x[1], h = x[2], w = x[3];
  const int64_t oc = y[1], oh = y[2], ow = y[3];
  detail::adopt_thread_count();
#pragma omp parallel for collapse(2) if (n * c * oh * ow > 65536)
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j)
          copy(((b * c + ch) * h + i * stride_h) * w + j * stride_w,
               ((b * oc + ch + before) * oh + i) * ow + j);
}

}  // namespace

Tensor subsample_pad_channels(const Tensor& x, int64_t stride_h, int64_t stride_w, int64_t before,
                              int64_t after) {
  const char* who = "subsample_pad_channels";
  check_plain_f32(who, "input", x);
  const Shape ys = padded_shape(who, x.shape(), stride_h, stride_w, before, after);
  Tensor y(ys);  // zero-filled: the padded channels stay 0
  const float* src = x.f32();
  float* dst = y.f32();
  for_each_kept(x.shape(), ys, stride_h, stride_w, before,
                [&](int64_t xi, int64_t yi) { dst[yi] = src[xi]; });
  return y;
}

Tensor subsample_pad_channels_backward(const Tensor& dy, const Shape& x_shape, int64_t stride_h,
                                       int64_t stride_w, int64_t before) {
  const char* who = "subsample_pad_channels backward";
  check_plain_f32(who, "output gradient", dy);
  RESNET_CHECK(dy.rank() == 4, who << ": expected a 4-D output gradient, got " << dy.shape_str());
  const int64_t after = dy.dim(1) - before - (x_shape.size() == 4 ? x_shape[1] : 0);
  const Shape ys = padded_shape(who, x_shape, stride_h, stride_w, before, after);
  RESNET_CHECK(dy.shape() == ys,
               who << ": expected output gradient " << shape_str(ys) << ", got " << dy.shape_str());
  Tensor dx(x_shape);  // zero-filled: the skipped rows and columns get no gradient
  const float* src = dy.f32();
  float* dst = dx.f32();
  for_each_kept(x_shape, ys, stride_h, stride_w, before,
                [&](int64_t xi, int64_t yi) { dst[xi] = src[yi]; });
  return dx;
}

}  // namespace resnet::backend
