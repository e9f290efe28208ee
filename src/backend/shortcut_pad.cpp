#include "resnet/backend/shortcut_pad.h"

#include <algorithm>
#include <string>

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

void check_input(const char* who, const char* name, const Tensor& t) {
  RESNET_CHECK(t.defined() && t.dtype() == DType::f32 &&
                   (t.is_plain() || (t.layout() == Layout::blocked16 && t.rank() == 4)),
               who << ": expected a plain or blocked16 f32 " << name << ", got "
                   << (t.defined() ? t.shape_str() + " " + dtype_name(t.dtype())
                                   : std::string("an undefined tensor")));
}

// One side of the copy: a 4-D f32 tensor, plain NCHW or blocked16 (channel blocks of 16
// innermost, the last block padded).
struct Side {
  const Shape& shape;
  bool blocked;
  Side(const Shape& s, Layout layout) : shape(s), blocked(layout == Layout::blocked16) {}
  int64_t lanes() const { return blocked ? 16 : 1; }
  int64_t rows() const { return blocked ? (shape[1] + 15) / 16 : shape[1]; }
  int64_t pixels() const { return shape[2] * shape[3]; }
  // Where channel ch of image n starts; pixel p of it is lanes() * p further on.
  int64_t channel_start(int64_t n, int64_t ch) const {
    if (!blocked) return (n * shape[1] + ch) * pixels();
    return (n * rows() + ch / 16) * pixels() * 16 + ch % 16;
  }
};

// Writes every element of `to` (blocked padding lanes included): destination channel ch
// reads source channel ch + channel_shift where that is a channel of both, destination
// pixel (i, j) reads source pixel (i * down, j * down) in the forward direction (down = the
// stride, up = 1) and (i / up, j / up) where both divide in the backward one; everything
// else is 0. So neither direction zero-fills first, and blocked tensors need no reorder.
void copy_shifted(const float* from, const Side& src, float* to, const Side& dst,
                  int64_t channel_shift, int64_t down_h, int64_t down_w, int64_t up_h,
                  int64_t up_w) {
  const int64_t n = dst.shape[0], rows = dst.rows(), lanes = dst.lanes();
  const int64_t oh = dst.shape[2], ow = dst.shape[3], sw = src.shape[3];
  detail::adopt_thread_count();
#pragma omp parallel for collapse(2) if (n * rows * dst.pixels() * lanes > 65536)
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t r = 0; r < rows; ++r) {
      int64_t start[16];  // each lane's source channel start, or -1: the lane is 0
      bool any = false;
      for (int64_t l = 0; l < lanes; ++l) {
        const int64_t ch = r * lanes + l, from_ch = ch + channel_shift;
        const bool kept = ch < dst.shape[1] && from_ch >= 0 && from_ch < src.shape[1];
        start[l] = kept ? src.channel_start(b, from_ch) : -1;
        any = any || kept;
      }
      float* out = to + dst.channel_start(b, r * lanes);
      for (int64_t i = 0; i < oh; ++i) {
        float* row = out + i * ow * lanes;
        if (!any || i % up_h != 0) {
          std::fill(row, row + ow * lanes, 0.f);
          continue;
        }
        const int64_t si = i / up_h * down_h;
        for (int64_t j = 0; j < ow; ++j) {
          float* px = row + j * lanes;
          if (j % up_w != 0) {
            std::fill(px, px + lanes, 0.f);
            continue;
          }
          const int64_t p = (si * sw + j / up_w * down_w) * src.lanes();
          for (int64_t l = 0; l < lanes; ++l) px[l] = start[l] >= 0 ? from[start[l] + p] : 0.f;
        }
      }
    }
  }
}

}  // namespace

Tensor subsample_pad_channels(const Tensor& x, int64_t stride_h, int64_t stride_w, int64_t before,
                              int64_t after) {
  const char* who = "subsample_pad_channels";
  check_input(who, "input", x);
  const Shape ys = padded_shape(who, x.shape(), stride_h, stride_w, before, after);
  Tensor y = Tensor::empty(ys, DType::f32, x.layout());
  copy_shifted(x.f32(), Side(x.shape(), x.layout()), y.f32(), Side(ys, x.layout()), -before,
               stride_h, stride_w, 1, 1);
  return y;
}

Tensor subsample_pad_channels_backward(const Tensor& dy, const Shape& x_shape, int64_t stride_h,
                                       int64_t stride_w, int64_t before) {
  const char* who = "subsample_pad_channels backward";
  check_input(who, "output gradient", dy);
  RESNET_CHECK(dy.rank() == 4, who << ": expected a 4-D output gradient, got " << dy.shape_str());
  const int64_t after = dy.dim(1) - before - (x_shape.size() == 4 ? x_shape[1] : 0);
  const Shape ys = padded_shape(who, x_shape, stride_h, stride_w, before, after);
  RESNET_CHECK(dy.shape() == ys,
               who << ": expected output gradient " << shape_str(ys) << ", got " << dy.shape_str());
  // The skipped rows and columns get no gradient.
  Tensor dx = Tensor::empty(x_shape, DType::f32, dy.layout());
  copy_shifted(dy.f32(), Side(dy.shape(), dy.layout()), dx.f32(), Side(x_shape, dy.layout()),
               before, 1, 1, stride_h, stride_w);
  return dx;
}

}  // namespace resnet::backend
