#pragma once
// Per-sample transforms: from one example of a dataset (of any image size) to a [C, H, W]
// f32 image of a fixed shape, working on 8-bit pixels as torchvision's transforms work on
// PIL images, so that the results match torchvision's byte for byte.
//
// A SampleTransform reads the example itself (Dataset::read_pixels), so it can ask for a
// reduced-size decode when it is going to shrink the image anyway. The loader applies it
// first, then its float Transform (flip, Normalize, erasing: transforms.h), both drawing
// from the sample's Rng.
//
//   RandomResizedCrop   training: torchvision's RandomResizedCrop(size, scale, ratio) with
//                       bilinear (Pillow's antialiased) resampling, then ToTensor
//   ResizeCenterCrop    evaluation and prediction: a Preprocessing (preprocess.h), i.e.
//                       Resize(R), CenterCrop(S), ToTensor, Normalize -- the very code
//                       `resnet predict` runs

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "resnet/data/dataset.h"
#include "resnet/data/preprocess.h"
#include "resnet/data/rng.h"
#include "resnet/tensor/tensor.h"

namespace resnet::data {

class SampleTransform {
 public:
  virtual ~SampleTransform() = default;
  // Example `index` of `dataset` as a [C, H, W] f32 image of output_shape(C).
  virtual Tensor apply(const Dataset& dataset, int64_t index, Rng& rng) const = 0;
  virtual ImageShape output_shape(int64_t channels) const = 0;
  // As torchvision prints it: "RandomResizedCrop(size=(224, 224), ...)".
  virtual std::string repr() const = 0;
};

// A window of an image: rows [top, top + height), columns [left, left + width).
struct CropBox {
  int64_t top = 0;
  int64_t left = 0;
  int64_t height = 0;
  int64_t width = 0;
  bool operator==(const CropBox&) const = default;
};

// torchvision 0.14's RandomResizedCrop.get_params for a height x width image: up to 10 tries
// of an area fraction uniform in `scale` and an aspect ratio (w / h) log-uniform in `ratio`,
// each rounded half to even, accepted when it fits, placed uniformly; after 10 misses the
// central crop of the whole image clamped to the ratio range.
CropBox sample_resized_crop_box(ImageSize image, std::pair<double, double> scale,
                                std::pair<double, double> ratio, Rng& rng);

// F.resized_crop on a PIL image: the window `box` (inside the image, checked) resized to
// out_h x out_w with Pillow's antialiased bilinear filter. Returns C x out_h x out_w bytes.
std::vector<uint8_t> resized_crop(const uint8_t* src, ImageShape from, const CropBox& box,
                                  int64_t out_h, int64_t out_w);

// The largest d in {1, 2, 4, 8} such that `box` of a full-size image, mapped into the image
// decoded at 1/d (ceil(n / d) a side), is still at least out_h x out_w.
int64_t reduced_decode_denominator(ImageSize full, const CropBox& box, int64_t out_h,
                                   int64_t out_w);

// `box` of a `full`-size image mapped into the same image decoded at `decoded` size (edges
// rounded to the nearest pixel, at least one pixel kept).
CropBox map_box(const CropBox& box, ImageSize full, ImageSize decoded);

class RandomResizedCrop : public SampleTransform {
 public:
  // `reduced_decode`: decode at 1/d when the box stays at least size x size there (faster,
  // no longer byte-identical to torchvision's full decode).
  explicit RandomResizedCrop(int64_t size, std::pair<double, double> scale = {0.08, 1.0},
                             std::pair<double, double> ratio = {3.0 / 4.0, 4.0 / 3.0},
                             bool reduced_decode = false);
  Tensor apply(const Dataset& dataset, int64_t index, Rng& rng) const override;
  ImageShape output_shape(int64_t channels) const override;
  std::string repr() const override;

 private:
  int64_t size_;
  std::pair<double, double> scale_, ratio_;
  bool reduced_decode_;
};

class ResizeCenterCrop : public SampleTransform {
 public:
  // `p` needs a crop (its output shape); its channels must match the dataset's.
  explicit ResizeCenterCrop(Preprocessing p);
  Tensor apply(const Dataset& dataset, int64_t index, Rng& rng) const override;  // draws nothing
  ImageShape output_shape(int64_t channels) const override;
  std::string repr() const override;
  const Preprocessing& preprocessing() const { return p_; }

 private:
  Preprocessing p_;
};

}  // namespace resnet::data
