#include "resnet/data/subset.h"

#include <algorithm>
#include <cmath>

#include "resnet/core/error.h"
#include "resnet/data/rng.h"

namespace resnet::data {

SubsetDataset::SubsetDataset(std::shared_ptr<const Dataset> base, std::vector<int64_t> indices,
                             std::string name)
    : base_(std::move(base)), indices_(std::move(indices)), name_(std::move(name)) {
  RESNET_CHECK(base_ != nullptr, name_ << ": expected a dataset to take a subset of, got null");
  for (int64_t i : indices_) {
    RESNET_CHECK(i >= 0 && i < base_->size(), name_ << ": expected indices in [0, " << base_->size()
                                                    << ") of " << base_->name() << ", got " << i);
  }
}

int64_t SubsetDataset::base_index(int64_t index) const {
  check_index(index);
  return indices_[static_cast<size_t>(index)];
}

void SubsetDataset::read_image(int64_t index, float* dst) const {
  base_->read_image(base_index(index), dst);
}

ImageSize SubsetDataset::image_size(int64_t index) const {
  return base_->image_size(base_index(index));
}

Pixels SubsetDataset::read_pixels(int64_t index, int64_t scale_denom) const {
  return base_->read_pixels(base_index(index), scale_denom);
}

std::string SubsetDataset::example_name(int64_t index) const {
  return base_->example_name(base_index(index));
}

HeldOutSplit stratified_split(const Dataset& dataset, double fraction, uint64_t seed) {
  RESNET_CHECK(fraction > 0 && fraction < 1,
               dataset.name() << ": expected a held-out fraction in (0, 1), got " << fraction);
  std::vector<std::vector<int64_t>> by_class(static_cast<size_t>(dataset.num_classes()));
  for (int64_t i = 0; i < dataset.size(); ++i) {
    by_class[static_cast<size_t>(dataset.label(i))].push_back(i);
  }
  Rng rng = Rng::derive(seed, Rng::kValSplitStream);
  HeldOutSplit split;
  for (const std::vector<int64_t>& members : by_class) {
    const auto n = static_cast<int64_t>(members.size());
    int64_t held = static_cast<int64_t>(std::nearbyint(fraction * static_cast<double>(n)));
    if (n >= 2)
      held = std::clamp<int64_t>(held, 1, n - 1);
    else
      held = 0;
    // Drawn for every class, even one with nothing to hold out, so that one class's size
    // does not change the draws of the next.
    const std::vector<int64_t> perm = random_permutation(n, rng);
    for (int64_t k = 0; k < n; ++k) {
      const int64_t index = members[static_cast<size_t>(perm[static_cast<size_t>(k)])];
      (k < held ? split.held_out : split.kept).push_back(index);
    }
  }
  std::sort(split.kept.begin(), split.kept.end());
  std::sort(split.held_out.begin(), split.held_out.end());
  RESNET_CHECK(!split.held_out.empty(),
               dataset.name() << ": expected --val-split " << fraction
                              << " to hold out some examples, got none (each class has fewer "
                                 "than two examples)");
  return split;
}

}  // namespace resnet::data
