#pragma once
// torchvision's CenterCrop on float32 [C, H, W] images.
//
// The window's top-left corner is (round((H - h) / 2), round((W - w) / 2)) with Python's
// round (half to even), as torchvision.transforms.functional.center_crop. A crop larger than
// the image first pads it with zeros as torchvision does: (h - H) // 2 rows on top and the
// rest below, likewise left and right.

#include <cstdint>
#include <string>

#include "resnet/data/transforms.h"

namespace resnet::data {

// The out_h x out_w center window of `image` (zero-padded where it lies outside).
Tensor center_crop(const Tensor& image, int64_t out_h, int64_t out_w);

class CenterCrop : public Transform {
 public:
  CenterCrop(int64_t height, int64_t width);
  Tensor apply(Tensor image, Rng& rng) const override;  // draws nothing from rng
  ImageShape output_shape(ImageShape in) const override;
  std::string repr() const override;

 private:
  int64_t height_, width_;
};

}  // namespace resnet::data
