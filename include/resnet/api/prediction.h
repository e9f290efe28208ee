#pragma once
// From logits to classes: softmax probabilities and the most probable classes, as
// `resnet predict` reports them.

#include <cstdint>
#include <vector>

#include "resnet/tensor/tensor.h"

namespace resnet {

struct ClassScore {
  int64_t index = 0;         // the class's index among the model's outputs
  double probability = 0.0;  // its softmax probability
};

// Softmax of one row of `classes` logits, in double with the maximum subtracted.
std::vector<double> softmax(const float* logits, int64_t classes);

// The indices of the k largest of `p`, largest first, ties to the lower index;
// 1 <= k <= p.size(), else resnet::Error.
std::vector<int64_t> top_classes(const std::vector<double>& p, int64_t k);

// For each row of [N, classes] logits (plain f32), its k most probable classes (k is
// capped at the class count).
std::vector<std::vector<ClassScore>> top_k(const Tensor& logits, int64_t k = 5);

}  // namespace resnet
