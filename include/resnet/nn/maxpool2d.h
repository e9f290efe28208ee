#pragma once
// MaxPool2d: torch.nn.MaxPool2d(kernel_size, stride=None, padding=0) with square int
// arguments, dilation 1, ceil_mode False (as torchvision's ResNet stem uses it).
// Input [N, C, H, W] -> output [N, C, OH, OW], OH = floor((H + 2*padding - kernel) / stride)
// + 1 (likewise OW); padding counts as -inf, so it never wins a window. Like PyTorch,
// padding must be at most kernel_size / 2, and the padded input must hold one window.
// Backward routes each output gradient to the input element that won its window (the
// first maximum in row-major order, as PyTorch's CPU kernel); where windows overlap, an
// element's gradients add up. No parameters.
//
// A training forward (keeps_for_backward()) keeps oneDNN's workspace (which element won);
// an inference forward keeps nothing.

#include <memory>
#include <optional>

#include "resnet/backend/pooling.h"
#include "resnet/nn/module.h"

namespace resnet::nn {

class MaxPool2d : public Module {
 public:
  // stride defaults to kernel_size, as in PyTorch.
  explicit MaxPool2d(int64_t kernel_size, std::optional<int64_t> stride = std::nullopt,
                     int64_t padding = 0);

  int64_t kernel_size() const { return kernel_size_; }
  int64_t stride() const { return stride_; }
  int64_t padding() const { return padding_; }

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& grad_output) override;
  // "kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False"
  std::string extra_repr() const override;

  void release_saved() override { saved_workspace_ = Tensor(); }

 private:
  // "MaxPool2d(kernel_size=3, stride=2, padding=1)", for messages.
  std::string label() const override;

  int64_t kernel_size_, stride_, padding_;
  std::unique_ptr<backend::MaxPool2dKernel> kernel_;
  Shape saved_input_shape_;
  Tensor saved_workspace_;
};

}  // namespace resnet::nn
