// What a reduced JPEG decode changes. Decoding at 1/d with libjpeg-turbo's scaled IDCT is
// compared with decoding at full size and then shrinking to the same size with
// resize_bilinear_antialias (Pillow's antialiased BILINEAR resize, what torchvision's
// Resize does): both are low-pass reductions, but not the same filter, so the bytes differ
// a little. The bounds below hold the figures measured on this photo-like test image (a
// smooth shaded scene with hard edges and sensor-like noise), with a small margin.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "io/io_test_util.h"
#include "resnet/data/image_codec.h"
#include "resnet/data/resize_antialias.h"

namespace resnet::data {
namespace {

// A 3 x 120 x 160 scene: a lit gradient background, a disc and a bar with hard edges, and
// deterministic noise of +-6.
std::vector<uint8_t> scene(int64_t h, int64_t w) {
  std::vector<uint8_t> px(static_cast<size_t>(3 * h * w));
  uint32_t state = 12345;
  for (int64_t c = 0; c < 3; ++c) {
    for (int64_t y = 0; y < h; ++y) {
      for (int64_t x = 0; x < w; ++x) {
        double v = 60 + 100.0 * x / w + 40.0 * y / h + 20 * c;
        const double dx = x - 0.6 * w, dy = y - 0.45 * h;
        if (dx * dx + dy * dy < 0.09 * h * h) v = 220 - 60 * c + 30 * std::sin(x * 0.3);
        if (y > 0.75 * h && x > 0.1 * w && x < 0.4 * w) v = 30 + 10 * c;
        state = state * 1664525u + 1013904223u;
        v += static_cast<int>(state >> 28) - 6;
        px[static_cast<size_t>((c * h + y) * w + x)] =
            static_cast<uint8_t>(std::clamp(v, 0.0, 255.0));
      }
    }
  }
  return px;
}

struct Difference {
  int max = 0;
  double mean = 0;
};

Difference compare(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  Difference d;
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const int diff = std::abs(int{a[i]} - int{b[i]});
    d.max = std::max(d.max, diff);
    sum += diff;
  }
  d.mean = sum / static_cast<double>(a.size());
  return d;
}

TEST(ImageCodecScaled, ReducedDecodeIsCloseToFullDecodeThenAntialiasedResize) {
  testing::TempDir dir;
  const int64_t h = 120, w = 160;
  const std::string path = dir.file("scene.jpg");
  const std::vector<uint8_t> px = scene(h, w);
  write_jpeg(path, px.data(), {3, h, w}, 90);
  ImageInfo full_info;
  const std::vector<uint8_t> full = decode_image(path, 3, &full_info);
  // Measured: 1/2 max 29 mean 1.37, 1/4 max 19 mean 1.32, 1/8 max 18 mean 1.90.
  const struct {
    int64_t denom;
    int max;
    double mean;
  } bounds[] = {{2, 35, 1.6}, {4, 24, 1.6}, {8, 24, 2.3}};
  for (const auto& b : bounds) {
    ImageInfo info;
    const std::vector<uint8_t> reduced = decode_image(path, 3, &info, DecodeOptions{b.denom});
    ASSERT_EQ(info.height, (h + b.denom - 1) / b.denom);
    ASSERT_EQ(info.width, (w + b.denom - 1) / b.denom);
    const std::vector<uint8_t> resized =
        resize_bilinear_antialias(full.data(), {3, h, w}, info.height, info.width);
    const Difference d = compare(reduced, resized);
    std::printf("1/%lld decode vs full decode + antialiased resize: max %d mean %.2f\n",
                static_cast<long long>(b.denom), d.max, d.mean);
    EXPECT_LE(d.max, b.max) << "1/" << b.denom;
    EXPECT_LE(d.mean, b.mean) << "1/" << b.denom;
    EXPECT_GT(d.max, 0) << "1/" << b.denom << ": the filters differ, so should the bytes";
  }
}

}  // namespace
}  // namespace resnet::data
