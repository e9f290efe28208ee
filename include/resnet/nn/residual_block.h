#pragma once
// ResidualBlock: the seed's block (conv3x3, BN, ReLU, conv3x3, BN, plus a shortcut, then
// add and ReLU), child for child as the PyTorch module it mirrors:
//   conv1    Conv2d(in, out, 3, stride, padding 1, no bias)
//   bn1      BatchNorm2d(out)
//   relu     ReLU(inplace=True), applied twice
//   conv2    Conv2d(out, out, 3, 1, padding 1, no bias)
//   bn2      BatchNorm2d(out)
//   shortcut Sequential(): the identity when stride == 1 and in == out, otherwise
//            Sequential(Conv2d(in, out, 1, stride, no bias), BatchNorm2d(out))
// forward: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)).
// Input [N, in, H, W] -> output [N, out, OH, OW], OH = floor((H - 1) / stride) + 1.

#include <memory>

#include "resnet/nn/batchnorm2d.h"
#include "resnet/nn/conv2d.h"
#include "resnet/nn/relu.h"
#include "resnet/nn/sequential.h"

namespace resnet::nn {

class ResidualBlock : public Module {
 public:
  ResidualBlock(int64_t in_channels, int64_t out_channels, int64_t stride = 1);

  bool has_identity_shortcut() const { return shortcut_->empty(); }

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& grad_output) override;
  std::string label() const override;  // "ResidualBlock(3, 8)", for messages

  void release_saved() override { saved_hidden_ = saved_output_ = Tensor(); }

 private:
  int64_t in_channels_, out_channels_;
  std::shared_ptr<Conv2d> conv1_;
  std::shared_ptr<BatchNorm2d> bn1_;
  std::shared_ptr<ReLU> relu_;
  std::shared_ptr<Conv2d> conv2_;
  std::shared_ptr<BatchNorm2d> bn2_;
  std::shared_ptr<Sequential> shortcut_;
  // Saved for backward: the outputs of the two ReLUs (which run as backend calls, so
  // that the ReLU module keeps nothing; it is reported to observers).
  Tensor saved_hidden_, saved_output_;
};

}  // namespace resnet::nn
