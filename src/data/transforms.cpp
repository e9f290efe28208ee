#include "resnet/data/transforms.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "resnet/core/error.h"

namespace resnet::data {

namespace {

void check_image(const Tensor& image, const char* who) {
  RESNET_CHECK(image.defined() && image.rank() == 3 && image.dtype() == DType::f32,
               who << ": expected a [C, H, W] f32 image, got "
                   << (image.defined() ? image.shape_str() + " " + dtype_name(image.dtype())
                                       : std::string("an undefined tensor")));
}

ImageShape shape_of(const Tensor& image) {
  return {image.dim(0), image.dim(1), image.dim(2)};
}

std::string fmt(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// Reverses every row of a tensor whose last axis is W: a left-right mirror.
void reverse_rows(Tensor& t) {
  const int64_t w = t.shape().back();
  if (w == 0) return;
  const int64_t rows = t.numel() / w;
  float* p = t.f32();
  for (int64_t r = 0; r < rows; ++r) std::reverse(p + r * w, p + (r + 1) * w);
}

}  // namespace

void hflip(Tensor& image) {
  check_image(image, "hflip");
  reverse_rows(image);
}

void hflip_batch(Tensor& images) {
  RESNET_CHECK(images.rank() == 4 && images.dtype() == DType::f32,
               "hflip_batch: expected an [N, C, H, W] f32 batch, got "
                   << images.shape_str() << " " << dtype_name(images.dtype()));
  reverse_rows(images);
}

Tensor pad_crop(const Tensor& image, int64_t padding, int64_t top, int64_t left, int64_t out_h,
                int64_t out_w) {
  check_image(image, "pad_crop");
  const ImageShape in = shape_of(image);
  const int64_t ph = in.height + 2 * padding, pw = in.width + 2 * padding;
  RESNET_CHECK(padding >= 0 && out_h > 0 && out_w > 0 && top >= 0 && left >= 0 &&
                   top + out_h <= ph && left + out_w <= pw,
               "pad_crop: expected a window inside the "
                   << ph << "x" << pw << " padded image, got " << out_h << "x" << out_w << " at ("
                   << top << ", " << left << ") with padding " << padding);
  Tensor out({in.channels, out_h, out_w});
  const float* src = image.f32();
  float* dst = out.f32();
  for (int64_t c = 0; c < in.channels; ++c) {
    for (int64_t y = 0; y < out_h; ++y) {
      const int64_t sy = top + y - padding;
      float* drow = dst + (c * out_h + y) * out_w;
      if (sy < 0 || sy >= in.height) continue;  // `out` starts zero-filled: the padding
      const float* srow = src + (c * in.height + sy) * in.width;
      for (int64_t x = 0; x < out_w; ++x) {
        const int64_t sx = left + x - padding;
        if (sx >= 0 && sx < in.width) drow[x] = srow[sx];
      }
    }
  }
  return out;
}

void erase(Tensor& image, int64_t top, int64_t left, int64_t height, int64_t width, float value) {
  check_image(image, "erase");
  const ImageShape s = shape_of(image);
  RESNET_CHECK(top >= 0 && left >= 0 && height >= 0 && width >= 0 && top + height <= s.height &&
                   left + width <= s.width,
               "erase: expected a box inside the " << s.height << "x" << s.width << " image, got "
                                                   << height << "x" << width << " at (" << top
                                                   << ", " << left << ")");
  float* p = image.f32();
  for (int64_t c = 0; c < s.channels; ++c) {
    for (int64_t y = top; y < top + height; ++y) {
      float* row = p + (c * s.height + y) * s.width;
      std::fill(row + left, row + left + width, value);
    }
  }
}

void normalize(Tensor& image, const std::vector<float>& mean, const std::vector<float>& std) {
  check_image(image, "normalize");
  const ImageShape s = shape_of(image);
  RESNET_CHECK(static_cast<int64_t>(mean.size()) == s.channels &&
                   static_cast<int64_t>(std.size()) == s.channels,
               "normalize: expected one mean and one std per channel of a "
                   << s.str() << " image, got " << mean.size() << " and " << std.size());
  float* p = image.f32();
  const int64_t plane = s.height * s.width;
  for (int64_t c = 0; c < s.channels; ++c) {
    const float m = mean[static_cast<size_t>(c)], d = std[static_cast<size_t>(c)];
    // Subtract then divide, as torchvision's sub_(mean).div_(std), for identical floats.
    for (int64_t i = 0; i < plane; ++i) p[c * plane + i] = (p[c * plane + i] - m) / d;
  }
}

void resize_bilinear(const float* src, ImageShape from, float* dst, int64_t out_h, int64_t out_w) {
  RESNET_CHECK(from.numel() > 0 && out_h > 0 && out_w > 0,
               "resize_bilinear: expected non-empty sizes, got " << from.str() << " to " << out_h
                                                                 << "x" << out_w);
  // Source coordinate of each output row/column: PyTorch's area_pixel_compute_source_index.
  auto taps = [](int64_t in, int64_t out, std::vector<int64_t>& i0, std::vector<int64_t>& i1,
                 std::vector<float>& frac) {
    const float scale = static_cast<float>(in) / static_cast<float>(out);
    for (int64_t o = 0; o < out; ++o) {
      const float x = std::max(scale * (static_cast<float>(o) + 0.5f) - 0.5f, 0.0f);
      const int64_t lo = std::min(static_cast<int64_t>(x), in - 1);
      i0.push_back(lo);
      i1.push_back(std::min(lo + 1, in - 1));
      frac.push_back(x - static_cast<float>(lo));
    }
  };
  std::vector<int64_t> y0, y1, x0, x1;
  std::vector<float> fy, fx;
  taps(from.height, out_h, y0, y1, fy);
  taps(from.width, out_w, x0, x1, fx);
  for (int64_t c = 0; c < from.channels; ++c) {
    const float* plane = src + c * from.height * from.width;
    for (int64_t y = 0; y < out_h; ++y) {
      const float* r0 = plane + y0[y] * from.width;
      const float* r1 = plane + y1[y] * from.width;
      const float wy = fy[y];
      float* out = dst + (c * out_h + y) * out_w;
      for (int64_t x = 0; x < out_w; ++x) {
        const float wx = fx[x];
        const float top = (1 - wx) * r0[x0[x]] + wx * r0[x1[x]];
        const float bottom = (1 - wx) * r1[x0[x]] + wx * r1[x1[x]];
        out[x] = (1 - wy) * top + wy * bottom;
      }
    }
  }
}

std::optional<EraseBox> sample_erase_box(int64_t height, int64_t width, double scale_lo,
                                         double scale_hi, double ratio_lo, double ratio_hi,
                                         Rng& rng) {
  const double area = static_cast<double>(height * width);
  const double log_lo = std::log(ratio_lo), log_hi = std::log(ratio_hi);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double erase_area = area * rng.uniform(scale_lo, scale_hi);
    const double aspect = std::exp(rng.uniform(log_lo, log_hi));
    // Python's round() rounds half to even, as nearbyint does in the default mode.
    const auto h = static_cast<int64_t>(std::nearbyint(std::sqrt(erase_area * aspect)));
    const auto w = static_cast<int64_t>(std::nearbyint(std::sqrt(erase_area / aspect)));
    if (!(h < height && w < width)) continue;
    EraseBox box;
    box.height = h;
    box.width = w;
    box.top = rng.randint(0, height - h + 1);
    box.left = rng.randint(0, width - w + 1);
    return box;
  }
  return std::nullopt;
}

// --- Normalize ---

Normalize::Normalize(std::vector<float> mean, std::vector<float> std)
    : mean_(std::move(mean)), std_(std::move(std)) {
  RESNET_CHECK(!mean_.empty() && mean_.size() == std_.size(),
               "Normalize: expected as many stds as means (at least one), got "
                   << mean_.size() << " means and " << std_.size() << " stds");
  for (float s : std_) {
    RESNET_CHECK(s > 0 && std::isfinite(s), "Normalize: expected positive stds, got " << s);
  }
}

Tensor Normalize::apply(Tensor image, Rng&) const {
  normalize(image, mean_, std_);
  return image;
}

ImageShape Normalize::output_shape(ImageShape in) const {
  RESNET_CHECK(in.channels == static_cast<int64_t>(mean_.size()),
               "Normalize: expected images of " << mean_.size() << " channels, got " << in.str());
  return in;
}

std::string Normalize::repr() const {
  auto list = [](const std::vector<float>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + fmt(v[i]);
    return s + "]";
  };
  return "Normalize(mean=" + list(mean_) + ", std=" + list(std_) + ")";
}

// --- RandomCrop ---

RandomCrop::RandomCrop(int64_t height, int64_t width, int64_t padding)
    : height_(height), width_(width), padding_(padding) {
  RESNET_CHECK(height > 0 && width > 0 && padding >= 0,
               "RandomCrop: expected a positive size and padding >= 0, got "
                   << height << "x" << width << " with padding " << padding);
}

ImageShape RandomCrop::output_shape(ImageShape in) const {
  RESNET_CHECK(height_ <= in.height + 2 * padding_ && width_ <= in.width + 2 * padding_,
               "RandomCrop: expected a crop of " << height_ << "x" << width_ << " to fit a "
                                                 << in.str() << " image padded by " << padding_
                                                 << ", got a smaller image");
  return {in.channels, height_, width_};
}

Tensor RandomCrop::apply(Tensor image, Rng& rng) const {
  check_image(image, "RandomCrop");
  const ImageShape in = shape_of(image);
  output_shape(in);
  const int64_t top = rng.randint(0, in.height + 2 * padding_ - height_ + 1);
  const int64_t left = rng.randint(0, in.width + 2 * padding_ - width_ + 1);
  return pad_crop(image, padding_, top, left, height_, width_);
}

std::string RandomCrop::repr() const {
  return "RandomCrop(size=(" + std::to_string(height_) + ", " + std::to_string(width_) +
         "), padding=" + std::to_string(padding_) + ")";
}

// --- RandomHorizontalFlip ---

RandomHorizontalFlip::RandomHorizontalFlip(double p) : p_(p) {
  RESNET_CHECK(p >= 0 && p <= 1, "RandomHorizontalFlip: expected p in [0, 1], got " << p);
}

Tensor RandomHorizontalFlip::apply(Tensor image, Rng& rng) const {
  if (rng.bernoulli(p_)) hflip(image);
  return image;
}

std::string RandomHorizontalFlip::repr() const {
  return "RandomHorizontalFlip(p=" + fmt(p_) + ")";
}

// --- RandomErasing ---

RandomErasing::RandomErasing(double p, std::pair<double, double> scale,
                             std::pair<double, double> ratio, float value)
    : p_(p), scale_(scale), ratio_(ratio), value_(value) {
  RESNET_CHECK(p >= 0 && p <= 1, "RandomErasing: expected p in [0, 1], got " << p);
  RESNET_CHECK(scale.first > 0 && scale.first <= scale.second && scale.second <= 1,
               "RandomErasing: expected an area fraction range 0 < lo <= hi <= 1, got ("
                   << scale.first << ", " << scale.second << ")");
  RESNET_CHECK(ratio.first > 0 && ratio.first <= ratio.second,
               "RandomErasing: expected an aspect range 0 < lo <= hi, got ("
                   << ratio.first << ", " << ratio.second << ")");
}

Tensor RandomErasing::apply(Tensor image, Rng& rng) const {
  check_image(image, "RandomErasing");
  if (!rng.bernoulli(p_)) return image;
  std::optional<EraseBox> box = sample_erase_box(image.dim(1), image.dim(2), scale_.first,
                                                 scale_.second, ratio_.first, ratio_.second, rng);
  if (box) erase(image, box->top, box->left, box->height, box->width, value_);
  return image;
}

std::string RandomErasing::repr() const {
  return "RandomErasing(p=" + fmt(p_) + ", scale=(" + fmt(scale_.first) + ", " +
         fmt(scale_.second) + "), ratio=(" + fmt(ratio_.first) + ", " + fmt(ratio_.second) +
         "), value=" + fmt(value_) + ")";
}

// --- Compose ---

Compose::Compose(std::vector<std::shared_ptr<const Transform>> transforms)
    : transforms_(std::move(transforms)) {
  for (const auto& t : transforms_) {
    RESNET_CHECK(t != nullptr, "Compose: expected transforms, got a null entry");
  }
}

Tensor Compose::apply(Tensor image, Rng& rng) const {
  for (const auto& t : transforms_) image = t->apply(std::move(image), rng);
  return image;
}

ImageShape Compose::output_shape(ImageShape in) const {
  for (const auto& t : transforms_) in = t->output_shape(in);
  return in;
}

std::string Compose::repr() const {
  std::string s = "Compose(\n";
  for (const auto& t : transforms_) s += "    " + t->repr() + "\n";
  return s + ")";
}

}  // namespace resnet::data
