#include "resnet/data/stats.h"

#include <algorithm>
#include <cmath>

#include "resnet/core/error.h"

namespace resnet::data {

namespace {

// Sums of every channel's values and squares over images of one shape.
struct Accumulator {
  std::vector<double> sum, sum_sq;
  int64_t images = 0;
  ImageShape shape;

  explicit Accumulator(ImageShape s)
      : sum(static_cast<size_t>(s.channels), 0.0), sum_sq(sum.size(), 0.0), shape(s) {}

  void add(const float* image);
  ChannelStats result() const;
};

}  // namespace

ChannelStats compute_channel_stats(const Dataset& dataset, int64_t max_images) {
  RESNET_CHECK(max_images >= 0, dataset.name() << ": expected max_images >= 0, got " << max_images);
  const int64_t n = max_images > 0 ? std::min(max_images, dataset.size()) : dataset.size();
  RESNET_CHECK(n > 0, dataset.name() << ": expected images to compute statistics over, got none");
  Accumulator acc(dataset.image_shape());
  std::vector<float> image(static_cast<size_t>(acc.shape.numel()));
  for (int64_t i = 0; i < n; ++i) {
    dataset.read_image(i, image.data());
    acc.add(image.data());
  }
  return acc.result();
}

ChannelStats compute_channel_stats(const Dataset& dataset, const SampleTransform& transform,
                                   int64_t count, bool skip_unreadable) {
  RESNET_CHECK(count > 0, dataset.name() << ": expected count > 0, got " << count);
  const int64_t n = std::min(count, dataset.size());
  RESNET_CHECK(n > 0, dataset.name() << ": expected images to compute statistics over, got none");
  Accumulator acc(transform.output_shape(dataset.image_shape().channels));
  Rng unused(0);  // an evaluation transform draws nothing
  for (int64_t k = 0; k < n; ++k) {
    const int64_t index = k * dataset.size() / n;
    Tensor image;
    try {
      image = transform.apply(dataset, index, unused);
    } catch (const Error&) {
      if (!skip_unreadable) throw;
      continue;
    }
    acc.add(image.f32());
  }
  RESNET_CHECK(acc.images > 0, dataset.name() << ": expected readable images to compute "
                                                 "statistics over, got none");
  return acc.result();
}

namespace {

void Accumulator::add(const float* image) {
  const int64_t plane = shape.height * shape.width;
  ++images;
  for (int64_t c = 0; c < shape.channels; ++c) {
    // Per-image partial sums keep the accumulation exact enough for any dataset size.
    double s = 0, s2 = 0;
    for (int64_t k = 0; k < plane; ++k) {
      const double v = image[c * plane + k];
      s += v;
      s2 += v * v;
    }
    sum[static_cast<size_t>(c)] += s;
    sum_sq[static_cast<size_t>(c)] += s2;
  }
}

ChannelStats Accumulator::result() const {
  const int64_t plane = shape.height * shape.width;
  ChannelStats stats;
  const double count = static_cast<double>(images) * static_cast<double>(plane);
  for (size_t c = 0; c < sum.size(); ++c) {
    const double mean = sum[c] / count;
    const double var = std::max(sum_sq[c] / count - mean * mean, 0.0);
    stats.mean.push_back(static_cast<float>(mean));
    stats.std.push_back(static_cast<float>(std::sqrt(var)));
  }
  return stats;
}

}  // namespace

}  // namespace resnet::data
