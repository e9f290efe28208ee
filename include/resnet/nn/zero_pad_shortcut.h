#pragma once
// ZeroPadShortcut: the paper's shortcut option A (He et al. 2015, section 4.2): when a
// stage halves the resolution and widens the channels, the identity is subsampled by
// taking every stride-th pixel, and the new channels are zeros, split evenly before and
// after the old ones (as the common PyTorch CIFAR code does with F.pad). No parameters.
// Input [N, IN, H, W] -> output [N, OUT, ceil(H / stride), ceil(W / stride)].

#include "resnet/nn/module.h"

namespace resnet::nn {

class ZeroPadShortcut : public Module {
 public:
  ZeroPadShortcut(int64_t in_channels, int64_t out_channels, int64_t stride);
  int64_t in_channels() const { return in_channels_; }
  int64_t out_channels() const { return out_channels_; }
  int64_t stride() const { return stride_; }
  // Zero channels before the input's (the rest go after).
  int64_t pad_front() const { return pad_front_; }

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& grad_output) override;
  std::string extra_repr() const override;

 private:
  int64_t in_channels_, out_channels_, stride_, pad_front_;
  Shape saved_input_shape_;
  Layout saved_layout_ = Layout::plain;
};

}  // namespace resnet::nn
