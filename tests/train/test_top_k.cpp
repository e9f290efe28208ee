// top_k_correct: ranks, ties broken towards the lower class index (torch.argmax), k range.

#include "resnet/train/top_k.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "train/train_test_util.h"

namespace resnet {
namespace {

using train::count_top_k_correct;
using train::top_k_correct;

// Row 0: label 2 is the largest -> top-1.  Row 1: label 0 ranks third (after 3 and 1).
// Row 2: labels 1 ties with 0 at the top: 0 wins (lower index), so label 1 ranks second.
// Row 3: label 0 ties with 2 at the top and wins.
TEST(CrossEntropyTopK, RanksAndTies) {
  const Tensor logits = Tensor::from_vector({4, 4}, {0.1f, 0.2f, 0.9f, 0.0f,  //
                                                     0.5f, 0.7f, 0.1f, 0.8f,  //
                                                     0.6f, 0.6f, 0.1f, 0.2f,  //
                                                     0.3f, 0.1f, 0.3f, 0.2f});
  const std::vector<int64_t> labels = {2, 0, 1, 0};
  EXPECT_EQ(top_k_correct(logits, labels, 1), (std::vector<bool>{true, false, false, true}));
  EXPECT_EQ(top_k_correct(logits, labels, 2), (std::vector<bool>{true, false, true, true}));
  EXPECT_EQ(top_k_correct(logits, labels, 3), (std::vector<bool>{true, true, true, true}));
  EXPECT_EQ(count_top_k_correct(logits, labels, 1), 2);
  EXPECT_EQ(count_top_k_correct(logits, labels, 2), 3);
  EXPECT_EQ(count_top_k_correct(logits, labels, 4), 4);
}

TEST(CrossEntropyTopK, NanAtLabelIsWrong) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const Tensor logits = Tensor::from_vector({2, 3}, {nan, 0.f, 1.f, 0.f, nan, 1.f});
  EXPECT_EQ(top_k_correct(logits, std::vector<int64_t>{0, 2}, 1), (std::vector<bool>{false, true}));
  EXPECT_EQ(top_k_correct(logits, std::vector<int64_t>{0, 2}, 3), (std::vector<bool>{false, true}));
}

TEST(CrossEntropyTopK, RejectsBadArguments) {
  const Tensor logits({2, 3});
  EXPECT_TRAIN_ERROR(top_k_correct(logits, std::vector<int64_t>{0, 3}), "top_k_correct", "label 3",
                     "3 classes");
  EXPECT_TRAIN_ERROR(top_k_correct(logits, std::vector<int64_t>{0, 1}, 4), "k in [1, 3]", "got 4");
  EXPECT_TRAIN_ERROR(top_k_correct(logits, std::vector<int64_t>{0, 1}, 0), "got 0");
  EXPECT_TRAIN_ERROR(top_k_correct(logits, std::vector<int64_t>{0}), "expected 2 labels");
}

}  // namespace
}  // namespace resnet
