// The stratified hold-out split (--val-split) and the subset datasets it makes.

#include "resnet/data/subset.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "data/data_test_util.h"

namespace resnet::data {
namespace {

TEST(Subset, StratifiedSplitHoldsOutTheFractionOfEveryClass) {
  // Class c has 10 * (c + 1) examples (labels i % 4 would be balanced; use blocks instead).
  std::vector<int64_t> labels;
  for (int64_t c = 0; c < 4; ++c) labels.insert(labels.end(), size_t(10 * (c + 1)), c);
  labels.push_back(3);  // 41 of class 3
  const auto n = static_cast<int64_t>(labels.size());
  InMemoryDataset ds("blocks", {1, 1, 1}, std::vector<uint8_t>(size_t(n)), labels, 5);
  const HeldOutSplit s = stratified_split(ds, 0.25, 11);
  std::vector<int64_t> per_class(5, 0);
  for (int64_t i : s.held_out) ++per_class[size_t(labels[size_t(i)])];
  // round(0.25 * n_c), half to even: 2.5 -> 2, 5, 7.5 -> 8, 10.25 -> 10; class 4 is empty.
  EXPECT_EQ(per_class, (std::vector<int64_t>{2, 5, 8, 10, 0}));
  std::vector<int64_t> all = s.kept;
  all.insert(all.end(), s.held_out.begin(), s.held_out.end());
  std::sort(all.begin(), all.end());
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(all[size_t(i)], i);  // disjoint and complete
  EXPECT_TRUE(std::is_sorted(s.held_out.begin(), s.held_out.end()));
  EXPECT_EQ(stratified_split(ds, 0.25, 11).held_out, s.held_out);  // a function of the seed
  EXPECT_NE(stratified_split(ds, 0.25, 12).held_out, s.held_out);
}

TEST(Subset, SmallClassesKeepOneAndBadFractionsAreRefused) {
  InMemoryDataset ds("tiny", {1, 1, 1}, std::vector<uint8_t>(5), {0, 0, 1, 1, 2}, 3);
  const HeldOutSplit s = stratified_split(ds, 0.01, 1);
  EXPECT_EQ(s.held_out.size(), 2u);  // one of each class of two; the single one stays
  EXPECT_IO_ERROR(stratified_split(ds, 1.0, 1), "fraction in (0, 1)", "got 1");
  InMemoryDataset single("single", {1, 1, 1}, std::vector<uint8_t>(2), {0, 1}, 2);
  EXPECT_IO_ERROR(stratified_split(single, 0.5, 1), "hold out some examples");
}

TEST(Subset, SubsetForwardsToItsBase) {
  auto base = testing::synthetic_dataset(10, {1, 2, 2}, 3);
  SubsetDataset sub(base, {7, 2}, "sub");
  EXPECT_EQ(sub.size(), 2);
  EXPECT_EQ(sub.label(0), 7 % 3);
  EXPECT_EQ(sub.read_pixels(1).bytes, base->read_pixels(2).bytes);
  EXPECT_EQ(sub.example_name(0), "synthetic #7");
  EXPECT_IO_ERROR(SubsetDataset(base, {10}, "bad"), "bad", "[0, 10)", "got 10");
}

}  // namespace
}  // namespace resnet::data
