#pragma once
// MixUp and CutMix of a training batch, as torchvision.transforms.v2.MixUp and CutMix
// (0.16+) do it, with soft targets for cross_entropy_soft (cross_entropy.h).
//
// lambda ~ Beta(alpha, alpha). The partner of sample i is sample i - 1 (i = 0 takes the
// last one): the batch rolled by one, torch.roll(batch, 1, 0).
//   MixUp:  x_i = lambda x_i + (1 - lambda) x_{i-1}
//   CutMix: a box centred at a uniform pixel (r_x, r_y), half-size int(r W) by int(r H)
//           with r = sqrt(1 - lambda) / 2, clipped to the image, is pasted from x_{i-1};
//           lambda becomes 1 - box area / image area (the clipped box's).
//   target_i = lambda onehot(y_i) + (1 - lambda) onehot(y_{i-1})
// With both alphas positive, each batch takes one of the two with probability 1/2
// (torchvision's RandomChoice([MixUp, CutMix])).
//
// Every draw comes from data::Rng::derive(seed, epoch, kMixStream, batch), so a batch is
// mixed the same way whenever it is trained (an interrupted run resumes bit-exactly).

#include <cstdint>
#include <span>

#include "resnet/tensor/tensor.h"

namespace resnet::train {

struct MixOptions {
  double mixup_alpha = 0.0;   // 0: no MixUp
  double cutmix_alpha = 0.0;  // 0: no CutMix
  uint64_t seed = 1;
  bool enabled() const { return mixup_alpha > 0.0 || cutmix_alpha > 0.0; }
};

struct MixResult {
  Tensor images;  // the mixed batch (a new tensor; the input is left as it was)
  bool cutmix = false;
  double lambda = 1.0;  // the weight of each sample's own label (CutMix: recomputed)
  Tensor targets;       // [N, K] f32 soft targets
  // The label with the larger weight (own label when lambda >= 0.5), for the training
  // accuracy of mixed batches.
  std::vector<int64_t> dominant_labels;
};

// Beta(alpha, alpha) from `rng`'s uniforms (Marsaglia-Tsang gamma variates); alpha > 0.
double sample_symmetric_beta(double alpha, uint64_t seed, uint64_t epoch, uint64_t batch);

// Mixes `images` ([N, C, H, W] f32, plain layout). labels: N indices in [0, K). Errors:
// options without a positive alpha, a negative alpha, images of another shape.
MixResult mix_batch(const Tensor& images, std::span<const int64_t> labels, int64_t num_classes,
                    const MixOptions& options, int64_t epoch, int64_t batch);

}  // namespace resnet::train
