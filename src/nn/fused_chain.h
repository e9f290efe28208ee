#pragma once
// Private to src/nn/: eval-mode inference plans of blocks. BatchNorm is folded into the
// preceding convolution (w' = w * gamma / sqrt(var + eps),
// b' = beta - mean * gamma / sqrt(var + eps)); ReLU and the residual add run as oneDNN
// post-ops of the convolutions. Activations stay blocked inside the block.

#include <functional>
#include <memory>
#include <vector>

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

// The eval-mode inference plan of a block: a main path of conv+BN steps, each with an
// optional ReLU, whose last step adds the shortcut's output before its ReLU.
//   shortcut kind none:       no add (plain networks)
//   identity:                 the block's input
//   projection:               conv+BN on the input (folded too)
//   custom:                   a function of the plain input (e.g. zero-padded channels)
struct FusedChainStep {
  Conv2d* conv;
  BatchNorm2d* bn;
  bool relu;
};

class FusedChain {
 public:
  enum class Shortcut { none, identity, projection, custom };
  using CustomShortcut = std::function<Tensor(const Tensor&)>;

  FusedChain(std::vector<FusedChainStep> main_path, Shortcut kind,
             Conv2d* projection_conv = nullptr, BatchNorm2d* projection_bn = nullptr,
             CustomShortcut custom = {});
  Tensor run(const Tensor& x);

 private:
  std::vector<std::unique_ptr<FoldedConvBn>> steps_;
  Shortcut kind_;
  std::unique_ptr<FoldedConvBn> projection_;
  CustomShortcut custom_;
};

}  // namespace resnet::nn::detail
