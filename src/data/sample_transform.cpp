#include "resnet/data/sample_transform.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "resnet/core/error.h"
#include "resnet/data/resize_antialias.h"

namespace resnet::data {

namespace {

// Python's int(round(x)): half to even, as nearbyint in the default rounding mode.
int64_t round_half_even(double x) {
  return static_cast<int64_t>(std::nearbyint(x));
}

std::string fmt(double v) {
  std::ostringstream s;
  s.precision(4);
  s << v;
  return s.str();
}

}  // namespace

CropBox sample_resized_crop_box(ImageSize image, std::pair<double, double> scale,
                                std::pair<double, double> ratio, Rng& rng) {
  const int64_t height = image.height, width = image.width;
  RESNET_CHECK(height > 0 && width > 0,
               "RandomResizedCrop: expected a non-empty image, got " << height << "x" << width);
  const double area = static_cast<double>(height) * static_cast<double>(width);
  const double log_lo = std::log(ratio.first), log_hi = std::log(ratio.second);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * rng.uniform(scale.first, scale.second);
    const double aspect = std::exp(rng.uniform(log_lo, log_hi));
    const int64_t w = round_half_even(std::sqrt(target_area * aspect));
    const int64_t h = round_half_even(std::sqrt(target_area / aspect));
    if (0 < w && w <= width && 0 < h && h <= height) {
      CropBox box;
      box.height = h;
      box.width = w;
      box.top = rng.randint(0, height - h + 1);
      box.left = rng.randint(0, width - w + 1);
      return box;
    }
  }
  // Central crop of the whole image, its aspect clamped to the range.
  const double in_ratio = static_cast<double>(width) / static_cast<double>(height);
  CropBox box{0, 0, height, width};
  if (in_ratio < std::min(ratio.first, ratio.second)) {
    box.height = round_half_even(static_cast<double>(width) / std::min(ratio.first, ratio.second));
  } else if (in_ratio > std::max(ratio.first, ratio.second)) {
    box.width = round_half_even(static_cast<double>(height) * std::max(ratio.first, ratio.second));
  }
  box.top = (height - box.height) / 2;
  box.left = (width - box.width) / 2;
  return box;
}

std::vector<uint8_t> resized_crop(const uint8_t* src, ImageShape from, const CropBox& box,
                                  int64_t out_h, int64_t out_w) {
  RESNET_CHECK(box.top >= 0 && box.left >= 0 && box.height > 0 && box.width > 0 &&
                   box.top + box.height <= from.height && box.left + box.width <= from.width,
               "resized_crop: expected a box inside the "
                   << from.height << "x" << from.width << " image, got " << box.height << "x"
                   << box.width << " at (" << box.top << ", " << box.left << ")");
  const ImageShape cropped{from.channels, box.height, box.width};
  std::vector<uint8_t> window(static_cast<size_t>(cropped.numel()));
  for (int64_t c = 0; c < from.channels; ++c) {
    for (int64_t y = 0; y < box.height; ++y) {
      const uint8_t* row = src + (c * from.height + box.top + y) * from.width + box.left;
      std::copy(row, row + box.width, window.begin() + (c * box.height + y) * box.width);
    }
  }
  return resize_bilinear_antialias(window.data(), cropped, out_h, out_w);
}

CropBox map_box(const CropBox& box, ImageSize full, ImageSize decoded) {
  if (full == decoded) return box;
  auto edge = [](int64_t x, int64_t from, int64_t to) {
    return round_half_even(static_cast<double>(x) * static_cast<double>(to) /
                           static_cast<double>(from));
  };
  auto axis = [&](int64_t start, int64_t length, int64_t from, int64_t to, int64_t& out_start,
                  int64_t& out_length) {
    int64_t a = std::clamp<int64_t>(edge(start, from, to), 0, to - 1);
    int64_t b = std::clamp<int64_t>(edge(start + length, from, to), a + 1, to);
    out_start = a;
    out_length = b - a;
  };
  CropBox out;
  axis(box.top, box.height, full.height, decoded.height, out.top, out.height);
  axis(box.left, box.width, full.width, decoded.width, out.left, out.width);
  return out;
}

int64_t reduced_decode_denominator(ImageSize full, const CropBox& box, int64_t out_h,
                                   int64_t out_w) {
  for (int64_t d : {8, 4, 2}) {
    const ImageSize decoded{(full.height + d - 1) / d, (full.width + d - 1) / d};
    const CropBox mapped = map_box(box, full, decoded);
    if (mapped.height >= out_h && mapped.width >= out_w) return d;
  }
  return 1;
}

// --- RandomResizedCrop ---

RandomResizedCrop::RandomResizedCrop(int64_t size, std::pair<double, double> scale,
                                     std::pair<double, double> ratio, bool reduced_decode)
    : size_(size), scale_(scale), ratio_(ratio), reduced_decode_(reduced_decode) {
  RESNET_CHECK(size > 0, "RandomResizedCrop: expected a positive size, got " << size);
  RESNET_CHECK(scale.first > 0 && scale.first <= scale.second && scale.second <= 1,
               "RandomResizedCrop: expected an area fraction range 0 < lo <= hi <= 1, got ("
                   << scale.first << ", " << scale.second << ")");
  RESNET_CHECK(ratio.first > 0 && ratio.first <= ratio.second,
               "RandomResizedCrop: expected an aspect range 0 < lo <= hi, got ("
                   << ratio.first << ", " << ratio.second << ")");
}

Tensor RandomResizedCrop::apply(const Dataset& dataset, int64_t index, Rng& rng) const {
  const ImageSize full = dataset.image_size(index);
  const CropBox box = sample_resized_crop_box(full, scale_, ratio_, rng);
  const int64_t denom = reduced_decode_ ? reduced_decode_denominator(full, box, size_, size_) : 1;
  const Pixels pixels = dataset.read_pixels(index, denom);
  const ImageSize decoded{pixels.shape.height, pixels.shape.width};
  RESNET_CHECK(denom > 1 || decoded == full, dataset.example_name(index)
                                                 << ": expected a " << full.height << "x"
                                                 << full.width << " image, got " << decoded.height
                                                 << "x" << decoded.width);
  const std::vector<uint8_t> out =
      resized_crop(pixels.bytes.data(), pixels.shape, map_box(box, full, decoded), size_, size_);
  Tensor image({pixels.shape.channels, size_, size_});
  bytes_to_unit_floats(out.data(), image.numel(), image.f32());
  return image;
}

ImageShape RandomResizedCrop::output_shape(int64_t channels) const {
  return {channels, size_, size_};
}

std::string RandomResizedCrop::repr() const {
  return "RandomResizedCrop(size=(" + std::to_string(size_) + ", " + std::to_string(size_) +
         "), scale=(" + fmt(scale_.first) + ", " + fmt(scale_.second) + "), ratio=(" +
         fmt(ratio_.first) + ", " + fmt(ratio_.second) + "), interpolation=bilinear" +
         (reduced_decode_ ? ", reduced_decode=True" : "") + ")";
}

// --- ResizeCenterCrop ---

ResizeCenterCrop::ResizeCenterCrop(Preprocessing p) : p_(std::move(p)) {
  RESNET_CHECK(p_.crop_height > 0 && p_.crop_width > 0,
               "ResizeCenterCrop: expected a center crop size, got " << p_.crop_height << "x"
                                                                     << p_.crop_width);
}

Tensor ResizeCenterCrop::apply(const Dataset& dataset, int64_t index, Rng&) const {
  const Pixels pixels = dataset.read_pixels(index);
  try {
    return preprocess_pixels(pixels.bytes.data(), pixels.shape, p_);
  } catch (const Error& e) {
    RESNET_FAIL(dataset.example_name(index) << ": " << e.what());
  }
}

ImageShape ResizeCenterCrop::output_shape(int64_t channels) const {
  RESNET_CHECK(channels == p_.channels, "ResizeCenterCrop: expected images of "
                                            << p_.channels << " channels, got " << channels);
  return {channels, p_.crop_height, p_.crop_width};
}

std::string ResizeCenterCrop::repr() const {
  return "ResizeCenterCrop(" + p_.describe() + ")";
}

}  // namespace resnet::data
