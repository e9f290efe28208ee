#pragma once
// Per-sample top-k correctness for classification metrics (top-1 = accuracy).
//
// logits: [N, K] f32, labels: N indices in [0, K) (out of range: resnet::Error naming the
// sample, the label and K), 1 <= k <= K (as torch.topk requires).
// Sample i is correct when its label ranks among the k largest logits of its row, ranks
// breaking ties towards the lower class index, as torch.argmax does for k = 1:
//   rank(y) = #{j : z_j > z_y} + #{j < y : z_j == z_y},   correct  <=>  rank(y) < k.
// A NaN logit at the label is never correct.

#include <cstdint>
#include <span>
#include <vector>

#include "resnet/tensor/tensor.h"

namespace resnet::train {

// One flag per sample, in batch order.
std::vector<bool> top_k_correct(const Tensor& logits, std::span<const int64_t> labels,
                                int64_t k = 1);

// The number of correct samples (the sum of top_k_correct).
int64_t count_top_k_correct(const Tensor& logits, std::span<const int64_t> labels, int64_t k = 1);

}  // namespace resnet::train
