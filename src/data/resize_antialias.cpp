#include "resnet/data/resize_antialias.h"

#include <algorithm>
#include <cmath>

#include "resnet/core/error.h"

namespace resnet::data {

namespace {

// Pillow's fixed point for 8-bit images: 32 bits minus 8 for the pixel and 2 of headroom.
constexpr int kPrecisionBits = 22;

// For one axis: which source pixels each output pixel reads, and with which weights.
struct AxisWeights {
  int64_t kernel = 0;           // weights per output pixel (some trailing ones unused)
  std::vector<int64_t> first;   // first source pixel read, per output pixel
  std::vector<int64_t> count;   // source pixels read, per output pixel
  std::vector<int32_t> weight;  // out_size x kernel, fixed point
};

double triangle(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

AxisWeights axis_weights(int64_t in_size, int64_t out_size) {
  const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
  // Shrinking widens the kernel by the scale (the antialiasing); enlarging keeps it.
  const double filter_scale = std::max(scale, 1.0);
  const double support = 1.0 * filter_scale;  // the triangle's support is 1
  // Multiplied by the reciprocal, not divided, as Pillow does: the weights' last bits
  // decide some rounded bytes.
  const double inverse_scale = 1.0 / filter_scale;
  AxisWeights a;
  a.kernel = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  a.first.resize(static_cast<size_t>(out_size));
  a.count.resize(static_cast<size_t>(out_size));
  a.weight.assign(static_cast<size_t>(out_size * a.kernel), 0);
  std::vector<double> w(static_cast<size_t>(a.kernel));
  for (int64_t o = 0; o < out_size; ++o) {
    const double center = (static_cast<double>(o) + 0.5) * scale;
    // Truncating casts, as Pillow's C code rounds these bounds (center +- support + 0.5).
    int64_t lo = static_cast<int64_t>(center - support + 0.5);
    lo = std::max<int64_t>(lo, 0);
    int64_t hi = static_cast<int64_t>(center + support + 0.5);
    hi = std::min(hi, in_size);
    const int64_t n = hi - lo;
    double sum = 0.0;
    for (int64_t k = 0; k < n; ++k) {
      w[static_cast<size_t>(k)] =
          triangle((static_cast<double>(k + lo) - center + 0.5) * inverse_scale);
      sum += w[static_cast<size_t>(k)];
    }
    for (int64_t k = 0; k < n; ++k) {
      const double v = sum != 0.0 ? w[static_cast<size_t>(k)] / sum : w[static_cast<size_t>(k)];
      // Rounded half away from zero into fixed point (weights are never negative here).
      const double fixed = v * static_cast<double>(1 << kPrecisionBits);
      a.weight[static_cast<size_t>(o * a.kernel + k)] =
          static_cast<int32_t>(fixed < 0 ? fixed - 0.5 : fixed + 0.5);
    }
    a.first[static_cast<size_t>(o)] = lo;
    a.count[static_cast<size_t>(o)] = n;
  }
  return a;
}

uint8_t round_to_byte(int64_t accumulated) {
  return static_cast<uint8_t>(std::clamp<int64_t>(accumulated >> kPrecisionBits, 0, 255));
}

// Each plane of `src` (planes x rows x in_w) resampled along its rows to out_w columns.
std::vector<uint8_t> resample_rows(const std::vector<uint8_t>& src, int64_t planes, int64_t rows,
                                   int64_t in_w, int64_t out_w) {
  const AxisWeights a = axis_weights(in_w, out_w);
  std::vector<uint8_t> dst(static_cast<size_t>(planes * rows * out_w));
  for (int64_t r = 0; r < planes * rows; ++r) {
    const uint8_t* in = src.data() + r * in_w;
    uint8_t* out = dst.data() + r * out_w;
    for (int64_t x = 0; x < out_w; ++x) {
      const int32_t* w = a.weight.data() + x * a.kernel;
      const uint8_t* p = in + a.first[static_cast<size_t>(x)];
      int64_t acc = int64_t{1} << (kPrecisionBits - 1);  // rounds the final shift to nearest
      for (int64_t k = 0; k < a.count[static_cast<size_t>(x)]; ++k) acc += int64_t{p[k]} * w[k];
      out[x] = round_to_byte(acc);
    }
  }
  return dst;
}

// Each plane of `src` (planes x in_h x width) resampled along its columns to out_h rows.
std::vector<uint8_t> resample_columns(const std::vector<uint8_t>& src, int64_t planes, int64_t in_h,
                                      int64_t width, int64_t out_h) {
  const AxisWeights a = axis_weights(in_h, out_h);
  std::vector<uint8_t> dst(static_cast<size_t>(planes * out_h * width));
  std::vector<int64_t> acc(static_cast<size_t>(width));
  for (int64_t c = 0; c < planes; ++c) {
    const uint8_t* plane = src.data() + c * in_h * width;
    for (int64_t y = 0; y < out_h; ++y) {
      std::fill(acc.begin(), acc.end(), int64_t{1} << (kPrecisionBits - 1));
      const int32_t* w = a.weight.data() + y * a.kernel;
      const int64_t first = a.first[static_cast<size_t>(y)];
      for (int64_t k = 0; k < a.count[static_cast<size_t>(y)]; ++k) {
        const uint8_t* row = plane + (first + k) * width;
        for (int64_t x = 0; x < width; ++x) acc[static_cast<size_t>(x)] += int64_t{row[x]} * w[k];
      }
      uint8_t* out = dst.data() + (c * out_h + y) * width;
      for (int64_t x = 0; x < width; ++x) out[x] = round_to_byte(acc[static_cast<size_t>(x)]);
    }
  }
  return dst;
}

}  // namespace

ImageSize shorter_side_size(int64_t height, int64_t width, int64_t size) {
  RESNET_CHECK(height > 0 && width > 0 && size > 0,
               "resize: expected a non-empty image and a positive size, got "
                   << height << "x" << width << " to shorter side " << size);
  const bool portrait = width <= height;
  const int64_t shorter = portrait ? width : height, longer = portrait ? height : width;
  // Python's int(size * long / short): the exact product, one correctly rounded division
  // (the same in IEEE double here), truncated.
  const int64_t new_longer =
      static_cast<int64_t>(static_cast<double>(size * longer) / static_cast<double>(shorter));
  return portrait ? ImageSize{new_longer, size} : ImageSize{size, new_longer};
}

std::vector<uint8_t> resize_bilinear_antialias(const uint8_t* src, ImageShape from, int64_t out_h,
                                               int64_t out_w) {
  RESNET_CHECK(from.numel() > 0 && out_h > 0 && out_w > 0, "resize: expected non-empty sizes, got "
                                                               << from.str() << " to " << out_h
                                                               << "x" << out_w);
  std::vector<uint8_t> image(src, src + from.numel());
  // Horizontal first, then vertical, each only when that side changes, as Pillow.
  if (out_w != from.width)
    image = resample_rows(image, from.channels, from.height, from.width, out_w);
  if (out_h != from.height)
    image = resample_columns(image, from.channels, from.height, out_w, out_h);
  return image;
}

}  // namespace resnet::data
