#pragma once
// Per-channel mean and standard deviation of a dataset's images, for Normalize.

#include <cstdint>
#include <vector>

#include "resnet/data/dataset.h"
#include "resnet/data/sample_transform.h"

namespace resnet::data {

struct ChannelStats {
  std::vector<float> mean;  // one per channel
  std::vector<float> std;   // population standard deviation (divides by the count)
};

// Statistics over every pixel of the first `max_images` images (all when 0), accumulated in
// double so that 47 million Fashion-MNIST pixels lose no precision.
ChannelStats compute_channel_stats(const Dataset& dataset, int64_t max_images = 0);

// Statistics of `transform`'s output (an evaluation crop, unnormalized) over `count` examples
// spread evenly over the dataset (indices i * size / count), for datasets whose images
// differ in size. With `skip_unreadable`, examples that fail to read are left out.
ChannelStats compute_channel_stats(const Dataset& dataset, const SampleTransform& transform,
                                   int64_t count, bool skip_unreadable = false);

}  // namespace resnet::data
