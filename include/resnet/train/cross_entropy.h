#pragma once
// Softmax cross-entropy over logits, as torch.nn.functional.cross_entropy(logits, labels,
// reduction="mean", label_smoothing=eps) in PyTorch 1.13.
//
// logits: [N, K] f32 (N >= 1 samples, K >= 1 classes). labels: N class indices, each in
// [0, K); a label out of range is a resnet::Error naming the sample, the label and K.
// Labels are a span of int64 (a std::vector<int64_t> converts; for an i64 Tensor pass
// {t.i64(), size_t(t.numel())}). PyTorch's ignore_index and class weights are not supported.
//
// With log p_ij = z_ij - logsumexp_j(z_ij) and target t_ij = (1 - eps) [j == y_i] + eps / K
// (PyTorch's label smoothing), the loss is the batch mean of -sum_j t_ij log p_ij, i.e.
//   loss = mean_i[(1 - eps) (-log p_{i,y_i}) + eps (-(1/K) sum_j log p_ij)],
// and its gradient w.r.t. the logits is (softmax(z_i)_j - t_ij) / N.
// Computed in double per row with the row maximum subtracted (log-sum-exp), so logits of any
// finite size give finite results; a non-finite logit gives a non-finite loss.

#include <cstdint>
#include <span>

#include "resnet/tensor/tensor.h"

namespace resnet::train {

struct CrossEntropyResult {
  double loss = 0.0;   // the batch mean
  Tensor grad_logits;  // [N, K] f32: d loss / d logits, already divided by N
};

// label_smoothing: eps in [0, 1] (PyTorch's range), 0 = plain cross-entropy.
CrossEntropyResult cross_entropy(const Tensor& logits, std::span<const int64_t> labels,
                                 double label_smoothing = 0.0);

// Soft targets (MixUp/CutMix, mixup.h), as cross_entropy(logits, probs, label_smoothing=eps)
// with a [N, K] probability target in PyTorch 1.13: the target becomes
// t_ij = (1 - eps) q_ij + eps / K, the loss is the batch mean of -sum_j t_ij log p_ij, and
// its gradient (softmax(z_i)_j * sum_j t_ij - t_ij) / N. targets: [N, K] f32, finite and
// non-negative (rows summing to 1 for a proper distribution; not required, as in PyTorch).
CrossEntropyResult cross_entropy_soft(const Tensor& logits, const Tensor& targets,
                                      double label_smoothing = 0.0);

}  // namespace resnet::train
