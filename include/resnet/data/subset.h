#pragma once
// A part of a dataset, and the seeded, stratified hold-out split that makes one from a
// training set without a validation split of its own (--val-split).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "resnet/data/dataset.h"

namespace resnet::data {

// The examples `indices` of `base` (each in range, checked), in that order, under `name`.
class SubsetDataset : public Dataset {
 public:
  SubsetDataset(std::shared_ptr<const Dataset> base, std::vector<int64_t> indices,
                std::string name);

  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  ImageShape image_shape() const override { return base_->image_shape(); }
  int64_t num_classes() const override { return base_->num_classes(); }
  const std::vector<std::string>& class_names() const override { return base_->class_names(); }
  int64_t label(int64_t index) const override { return base_->label(base_index(index)); }
  void read_image(int64_t index, float* dst) const override;
  ImageSize image_size(int64_t index) const override;
  Pixels read_pixels(int64_t index, int64_t scale_denom = 1) const override;
  std::string example_name(int64_t index) const override;
  std::string name() const override { return name_; }

  // The index in the base dataset of example `index`.
  int64_t base_index(int64_t index) const;

 private:
  std::shared_ptr<const Dataset> base_;
  std::vector<int64_t> indices_;
  std::string name_;
};

struct HeldOutSplit {
  std::vector<int64_t> kept;      // ascending
  std::vector<int64_t> held_out;  // ascending
};

// Holds out round(fraction * n_c) examples of every class c of n_c examples (half to even;
// at least one when the class has two or more and fraction > 0, never all of them), chosen
// by a permutation of the class's examples drawn from Rng::derive(seed, kValSplitStream).
// fraction in (0, 1), checked; the same (dataset, fraction, seed) always gives the same split.
HeldOutSplit stratified_split(const Dataset& dataset, double fraction, uint64_t seed);

}  // namespace resnet::data
