#include "resnet/data/center_crop.h"

#include <algorithm>
#include <sstream>

#include "resnet/core/error.h"

namespace resnet::data {

namespace {

// int(round(gap / 2)) in Python: halves go to the even neighbour.
int64_t half_to_even(int64_t gap) {
  int64_t half = gap / 2;
  if (gap % 2 != 0 && half % 2 != 0) ++half;
  return half;
}

// Where the window starts along one axis, in the unpadded image's coordinates (negative
// when torchvision would pad first).
int64_t window_start(int64_t size, int64_t crop) {
  if (crop > size) {
    const int64_t before = (crop - size) / 2;  // torchvision's left/top padding
    // After padding to exactly `crop`, the window is the whole padded image.
    return -before;
  }
  return half_to_even(size - crop);
}

}  // namespace

Tensor center_crop(const Tensor& image, int64_t out_h, int64_t out_w) {
  RESNET_CHECK(image.defined() && image.rank() == 3 && image.dtype() == DType::f32,
               "center_crop: expected a [C, H, W] f32 image, got "
                   << (image.defined() ? image.shape_str() : std::string("an undefined tensor")));
  RESNET_CHECK(out_h > 0 && out_w > 0,
               "center_crop: expected a positive size, got " << out_h << "x" << out_w);
  const int64_t c = image.dim(0), h = image.dim(1), w = image.dim(2);
  // torchvision pads only the sides that are too small and then crops the others, so each
  // axis is independent.
  const int64_t top = window_start(h, out_h), left = window_start(w, out_w);
  Tensor out({c, out_h, out_w});  // zero-filled: the padding
  const float* src = image.f32();
  float* dst = out.f32();
  const int64_t x0 = std::max<int64_t>(0, -left), x1 = std::min(out_w, w - left);
  for (int64_t ch = 0; ch < c; ++ch) {
    for (int64_t y = 0; y < out_h; ++y) {
      const int64_t sy = top + y;
      if (sy < 0 || sy >= h) continue;
      const float* srow = src + (ch * h + sy) * w;
      float* drow = dst + (ch * out_h + y) * out_w;
      for (int64_t x = x0; x < x1; ++x) drow[x] = srow[left + x];
    }
  }
  return out;
}

CenterCrop::CenterCrop(int64_t height, int64_t width) : height_(height), width_(width) {
  RESNET_CHECK(height > 0 && width > 0,
               "CenterCrop: expected a positive size, got " << height << "x" << width);
}

Tensor CenterCrop::apply(Tensor image, Rng&) const {
  return center_crop(image, height_, width_);
}

ImageShape CenterCrop::output_shape(ImageShape in) const {
  return {in.channels, height_, width_};
}

std::string CenterCrop::repr() const {
  std::ostringstream s;
  s << "CenterCrop(size=(" << height_ << ", " << width_ << "))";
  return s.str();
}

}  // namespace resnet::data
