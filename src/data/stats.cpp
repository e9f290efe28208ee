#include "resnet/data/stats.h"

#include <algorithm>
#include <cmath>

#include "resnet/core/error.h"

namespace resnet::data {

ChannelStats compute_channel_stats(const Dataset& dataset, int64_t max_images) {
  RESNET_CHECK(max_images >= 0, dataset.name() << ": expected max_images >= 0, got " << max_images);
  const int64_t n = max_images > 0 ? std::min(max_images, dataset.size()) : dataset.size();
  RESNET_CHECK(n > 0, dataset.name() << ": expected images to compute statistics over, got none");
  const ImageShape shape = dataset.image_shape();
  const int64_t plane = shape.height * shape.width;
  std::vector<double> sum(static_cast<size_t>(shape.channels), 0.0);
  std::vector<double> sum_sq(sum.size(), 0.0);
  std::vector<float> image(static_cast<size_t>(shape.numel()));
  for (int64_t i = 0; i < n; ++i) {
    dataset.read_image(i, image.data());
    for (int64_t c = 0; c < shape.channels; ++c) {
      // Per-image partial sums keep the accumulation exact enough for any dataset size.
      double s = 0, s2 = 0;
      for (int64_t k = 0; k < plane; ++k) {
        const double v = image[static_cast<size_t>(c * plane + k)];
        s += v;
        s2 += v * v;
      }
      sum[static_cast<size_t>(c)] += s;
      sum_sq[static_cast<size_t>(c)] += s2;
    }
  }
  ChannelStats stats;
  const double count = static_cast<double>(n) * static_cast<double>(plane);
  for (size_t c = 0; c < sum.size(); ++c) {
    const double mean = sum[c] / count;
    const double var = std::max(sum_sq[c] / count - mean * mean, 0.0);
    stats.mean.push_back(static_cast<float>(mean));
    stats.std.push_back(static_cast<float>(std::sqrt(var)));
  }
  return stats;
}

}  // namespace resnet::data
