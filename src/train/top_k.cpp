#include "resnet/train/top_k.h"

#include <algorithm>

#include "check_labels.h"
#include "resnet/core/error.h"

namespace resnet::train {

std::vector<bool> top_k_correct(const Tensor& logits, std::span<const int64_t> labels, int64_t k) {
  detail::check_logits_and_labels("top_k_correct", logits, labels);
  const int64_t n = logits.dim(0), classes = logits.dim(1);
  RESNET_CHECK(k >= 1 && k <= classes, "top_k_correct: expected k in [1, "
                                           << classes << "] for " << classes << " classes, got "
                                           << k);
  std::vector<bool> correct(static_cast<size_t>(n));
  const float* z = logits.f32();
  for (int64_t i = 0; i < n; ++i) {
    const float* zi = z + i * classes;
    const int64_t y = labels[i];
    const float zy = zi[y];
    if (zy != zy) continue;  // NaN at the label: never correct
    int64_t rank = 0;
    for (int64_t j = 0; j < classes && rank < k; ++j) {
      // A NaN elsewhere compares false both ways and does not outrank the label.
      if (zi[j] > zy || (j < y && zi[j] == zy)) ++rank;
    }
    correct[i] = rank < k;
  }
  return correct;
}

int64_t count_top_k_correct(const Tensor& logits, std::span<const int64_t> labels, int64_t k) {
  const std::vector<bool> correct = top_k_correct(logits, labels, k);
  return std::count(correct.begin(), correct.end(), true);
}

}  // namespace resnet::train
