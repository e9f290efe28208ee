#include <cmath>
#include <limits>
#include <vector>

#include "ref_checks.h"
#include "resnet/ref/kernels.h"

namespace resnet::ref {

namespace {

struct PoolGeometry {
  int64_t N, C, H, W, OH, OW;
};

PoolGeometry maxpool_geometry(const char* who, const Shape& src, int64_t kernel, int64_t stride,
                              int64_t pad) {
  RESNET_CHECK(kernel >= 1, who << ": expected kernel >= 1, got " << kernel);
  RESNET_CHECK(stride >= 1, who << ": expected stride >= 1, got " << stride);
  // PyTorch's limit; it also guarantees every window holds at least one real element, so
  // no output is ever -inf.
  RESNET_CHECK(pad >= 0 && pad <= kernel / 2,
               who << ": expected 0 <= pad <= kernel / 2 = " << kernel / 2 << ", got " << pad);
  PoolGeometry g{src[0], src[1], src[2], src[3], 0, 0};
  RESNET_CHECK(g.H + 2 * pad >= kernel && g.W + 2 * pad >= kernel,
               who << ": expected the padded input to hold a " << kernel << "x" << kernel
                   << " window, got src " << shape_str(src) << " with pad " << pad);
  g.OH = (g.H + 2 * pad - kernel) / stride + 1;  // floor: ceil_mode = false
  g.OW = (g.W + 2 * pad - kernel) / stride + 1;
  return g;
}

// Flat index into src of the max of window (n, c, oh, ow): the first maximum in row-major
// scan order, as PyTorch's CPU kernel picks it: a strict ">" update, and any NaN wins.
int64_t argmax_in_window(const PoolGeometry& g, const float* x, int64_t n, int64_t c, int64_t oh,
                         int64_t ow, int64_t kernel, int64_t stride, int64_t pad) {
  const float* plane = x + (n * g.C + c) * g.H * g.W;
  float best = -std::numeric_limits<float>::infinity();  // the padding value
  int64_t best_index = -1;
  for (int64_t kh = 0; kh < kernel; ++kh) {
    const int64_t ih = oh * stride - pad + kh;
    if (ih < 0 || ih >= g.H) continue;
    for (int64_t kw = 0; kw < kernel; ++kw) {
      const int64_t iw = ow * stride - pad + kw;
      if (iw < 0 || iw >= g.W) continue;
      const float v = plane[ih * g.W + iw];
      if (best_index < 0 || v > best || std::isnan(v)) {
        best = v;
        best_index = ih * g.W + iw;
      }
    }
  }
  return (n * g.C + c) * g.H * g.W + best_index;
}

}  // namespace

Tensor maxpool2d_forward(const Tensor& src, int64_t kernel, int64_t stride, int64_t pad) {
  const char* who = "ref::maxpool2d_forward";
  detail::check_f32(src, 4, who, "src");
  const PoolGeometry g = maxpool_geometry(who, src.shape(), kernel, stride, pad);
  Tensor dst({g.N, g.C, g.OH, g.OW});
  const float* x = src.f32();
  float* y = dst.f32();
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t c = 0; c < g.C; ++c)
      for (int64_t oh = 0; oh < g.OH; ++oh)
        for (int64_t ow = 0; ow < g.OW; ++ow)
          y[((n * g.C + c) * g.OH + oh) * g.OW + ow] =
              x[argmax_in_window(g, x, n, c, oh, ow, kernel, stride, pad)];
  return dst;
}

Tensor maxpool2d_backward(const Tensor& diff_dst, const Tensor& src, int64_t kernel, int64_t stride,
                          int64_t pad) {
  const char* who = "ref::maxpool2d_backward";
  detail::check_f32(src, 4, who, "src");
  const PoolGeometry g = maxpool_geometry(who, src.shape(), kernel, stride, pad);
  detail::check_f32_shape(diff_dst, {g.N, g.C, g.OH, g.OW}, who, "diff_dst");
  // Overlapping windows (stride < kernel) can route several gradients to one element.
  std::vector<double> dx(static_cast<size_t>(src.numel()), 0.0);
  const float* x = src.f32();
  const float* dy = diff_dst.f32();
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t c = 0; c < g.C; ++c)
      for (int64_t oh = 0; oh < g.OH; ++oh)
        for (int64_t ow = 0; ow < g.OW; ++ow)
          dx[argmax_in_window(g, x, n, c, oh, ow, kernel, stride, pad)] +=
              dy[((n * g.C + c) * g.OH + oh) * g.OW + ow];
  Tensor diff_src(src.shape());
  for (size_t i = 0; i < dx.size(); ++i) diff_src.f32()[i] = static_cast<float>(dx[i]);
  return diff_src;
}

Tensor global_avgpool_forward(const Tensor& src) {
  detail::check_f32(src, 4, "ref::global_avgpool_forward", "src");
  const int64_t N = src.dim(0), C = src.dim(1), HW = src.dim(2) * src.dim(3);
  RESNET_CHECK(HW > 0, "ref::global_avgpool_forward: expected a non-empty image, got src "
                           << src.shape_str());
  Tensor dst({N, C, 1, 1});
  for (int64_t nc = 0; nc < N * C; ++nc) {
    const float* plane = src.f32() + nc * HW;
    double acc = 0.0;
    for (int64_t i = 0; i < HW; ++i) acc += plane[i];
    dst.f32()[nc] = static_cast<float>(acc / double(HW));
  }
  return dst;
}

Tensor global_avgpool_backward(const Tensor& diff_dst, const Shape& src_shape) {
  const char* who = "ref::global_avgpool_backward";
  RESNET_CHECK(src_shape.size() == 4,
               who << ": expected 4-D src shape [N, C, H, W], got " << shape_str(src_shape));
  const int64_t N = src_shape[0], C = src_shape[1], HW = src_shape[2] * src_shape[3];
  RESNET_CHECK(HW > 0, who << ": expected a non-empty image, got src " << shape_str(src_shape));
  detail::check_f32_shape(diff_dst, {N, C, 1, 1}, who, "diff_dst");
  Tensor diff_src(src_shape);
  for (int64_t nc = 0; nc < N * C; ++nc) {
    const float share = static_cast<float>(double(diff_dst.f32()[nc]) / double(HW));
    float* plane = diff_src.f32() + nc * HW;
    for (int64_t i = 0; i < HW; ++i) plane[i] = share;
  }
  return diff_src;
}

}  // namespace resnet::ref
