#pragma once
// Private to src/nn/: the eval-mode inference plan of a ResidualBlock. BatchNorm is
// folded into the preceding convolution (w' = w * gamma / sqrt(var + eps),
// b' = beta - mean * gamma / sqrt(var + eps)); conv1 carries ReLU as a post-op, conv2
// carries the residual add and the final ReLU. Activations stay blocked inside.

#include "resnet/backend/fused_conv.h"
#include "resnet/nn/batchnorm2d.h"
#include "resnet/nn/conv2d.h"
#include "resnet/nn/sequential.h"

namespace resnet::nn::detail {

// A convolution followed by a BatchNorm, folded into one convolution with bias.
class FoldedConvBn {
 public:
  FoldedConvBn(Conv2d& conv, BatchNorm2d& bn, bool add_residual, bool relu);
  backend::Activation run(const backend::Activation& src, backend::Activation residual = {});
  backend::Activation adopt(const backend::Activation& src);

 private:
  // Refolds when any source tensor changed since the last fold.
  void refresh();
  Conv2d& conv_;
  BatchNorm2d& bn_;
  backend::FusedConv2d fused_;
  Tensor folded_weight_, folded_bias_;
  std::vector<uint64_t> source_versions_;
};

struct FusedBlockPlan {
  // shortcut is null for the identity, otherwise Sequential(Conv2d, BatchNorm2d).
  Tensor run(const Tensor& x, Conv2d& conv1, BatchNorm2d& bn1, Conv2d& conv2, BatchNorm2d& bn2,
             Sequential* shortcut);

 private:
  std::unique_ptr<FoldedConvBn> first_, second_, projection_;
};

}  // namespace resnet::nn::detail
