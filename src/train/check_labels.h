#pragma once
// Shared argument checks of the classification losses and metrics (private to src/train).

#include <cstdint>
#include <span>

#include "resnet/tensor/tensor.h"

namespace resnet::train::detail {

// Checks that logits is a [N, K] f32 tensor with N >= 1 and K >= 1, that labels holds N
// entries, and that each lies in [0, K); errors start with `who`.
void check_logits_and_labels(const char* who, const Tensor& logits,
                             std::span<const int64_t> labels);

}  // namespace resnet::train::detail
