#pragma once
// Image transforms on float32 [C, H, W] tensors, as torchvision's, deterministic given the
// Rng passed in.
//
// The primitives (hflip, pad_crop, erase, normalize, resize_bilinear) take their parameters
// explicitly; the Transform classes draw those parameters from an Rng in the same order and
// with the same formulas as torchvision 0.14, so a transform's effect is a pure function of
// (image, rng state). Transform::apply may modify the image it is given in place (tensors
// share storage on copy) and returns the result, which may have a different shape.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "resnet/data/dataset.h"
#include "resnet/data/rng.h"
#include "resnet/tensor/tensor.h"

namespace resnet::data {

// --- primitives; `image` is always [C, H, W] f32 (checked) ---

// Mirrors left-right, in place.
void hflip(Tensor& image);
// Mirrors every image of an [N, C, H, W] f32 batch left-right, in place.
void hflip_batch(Tensor& images);
// Pads by `padding` zeros on every side, then returns the out_h x out_w window whose top-left
// corner is at (top, left) of the padded image; the window must lie inside it.
Tensor pad_crop(const Tensor& image, int64_t padding, int64_t top, int64_t left, int64_t out_h,
                int64_t out_w);
// Sets image[:, top:top+height, left:left+width] = value, in place (box checked).
void erase(Tensor& image, int64_t top, int64_t left, int64_t height, int64_t width, float value);
// image[c] = (image[c] - mean[c]) / std[c], in place; one mean and std per channel.
void normalize(Tensor& image, const std::vector<float>& mean, const std::vector<float>& std);
// Bilinear resize with half-pixel centres (PyTorch's interpolate, align_corners=False, no
// antialiasing): src is from.numel() floats, dst receives C x out_h x out_w.
void resize_bilinear(const float* src, ImageShape from, float* dst, int64_t out_h, int64_t out_w);

struct EraseBox {
  int64_t top = 0;
  int64_t left = 0;
  int64_t height = 0;
  int64_t width = 0;
};
// torchvision's RandomErasing.get_params: up to 10 tries of an area fraction uniform in
// `scale` and a log-uniform aspect ratio in `ratio`; nullopt when no try fits.
std::optional<EraseBox> sample_erase_box(int64_t height, int64_t width, double scale_lo,
                                         double scale_hi, double ratio_lo, double ratio_hi,
                                         Rng& rng);

// --- composable transforms ---

class Transform {
 public:
  virtual ~Transform() = default;
  virtual Tensor apply(Tensor image, Rng& rng) const = 0;
  // The shape apply() returns for an input of `in` (checked against what it accepts).
  virtual ImageShape output_shape(ImageShape in) const { return in; }
  // "RandomCrop(size=(28, 28), padding=4)", as torchvision prints it.
  virtual std::string repr() const = 0;
};

class Normalize : public Transform {
 public:
  // One mean and one std per channel; every std must be positive.
  Normalize(std::vector<float> mean, std::vector<float> std);
  Tensor apply(Tensor image, Rng& rng) const override;
  ImageShape output_shape(ImageShape in) const override;
  std::string repr() const override;

 private:
  std::vector<float> mean_, std_;
};

// Zero padding, then a uniformly placed height x width window.
class RandomCrop : public Transform {
 public:
  RandomCrop(int64_t height, int64_t width, int64_t padding = 0);
  Tensor apply(Tensor image, Rng& rng) const override;
  ImageShape output_shape(ImageShape in) const override;
  std::string repr() const override;

 private:
  int64_t height_, width_, padding_;
};

// Mirrors with probability p.
class RandomHorizontalFlip : public Transform {
 public:
  explicit RandomHorizontalFlip(double p = 0.5);
  Tensor apply(Tensor image, Rng& rng) const override;
  std::string repr() const override;

 private:
  double p_;
};

// Random erasing (Zhong et al. 2017, "Random Erasing Data Augmentation"): with probability
// p, one box whose area is a fraction in `scale` of the image and whose aspect ratio lies in
// `ratio` is set to `value` (0: after Normalize, the dataset mean) in every channel.
class RandomErasing : public Transform {
 public:
  explicit RandomErasing(double p = 0.5, std::pair<double, double> scale = {0.02, 0.33},
                         std::pair<double, double> ratio = {0.3, 3.3}, float value = 0.0f);
  Tensor apply(Tensor image, Rng& rng) const override;
  std::string repr() const override;

 private:
  double p_;
  std::pair<double, double> scale_, ratio_;
  float value_;
};

// Applies transforms in order, each drawing from the same Rng.
class Compose : public Transform {
 public:
  explicit Compose(std::vector<std::shared_ptr<const Transform>> transforms);
  Tensor apply(Tensor image, Rng& rng) const override;
  ImageShape output_shape(ImageShape in) const override;
  std::string repr() const override;

 private:
  std::vector<std::shared_ptr<const Transform>> transforms_;
};

}  // namespace resnet::data
