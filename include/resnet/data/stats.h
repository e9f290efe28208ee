#pragma once
// Per-channel mean and standard deviation of a dataset's images, for Normalize.

#include <cstdint>
#include <vector>

#include "resnet/data/dataset.h"

namespace resnet::data {

struct ChannelStats {
  std::vector<float> mean;  // one per channel
  std::vector<float> std;   // population standard deviation (divides by the count)
};

// Statistics over every pixel of the first `max_images` images (all when 0), accumulated in
// double so that 47 million Fashion-MNIST pixels lose no precision.
ChannelStats compute_channel_stats(const Dataset& dataset, int64_t max_images = 0);

}  // namespace resnet::data
