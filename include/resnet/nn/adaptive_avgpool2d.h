#pragma once
// AdaptiveAvgPool2d: torch.nn.AdaptiveAvgPool2d(output_size).
// Input [N, C, H, W] -> output [N, C, OH, OW] for any H, W >= 1. Output cell (i, j) is the
// mean of input rows [floor(i*H/OH), ceil((i+1)*H/OH)) and columns
// [floor(j*W/OW), ceil((j+1)*W/OW)); (1, 1) is the global average of torchvision's ResNet.
// Backward spreads each output gradient evenly over its window. No parameters.
//
// Printing follows how it was built, as in PyTorch: AdaptiveAvgPool2d(1, 1) prints
// "AdaptiveAvgPool2d(output_size=(1, 1))" (torchvision's nn.AdaptiveAvgPool2d((1, 1))),
// AdaptiveAvgPool2d(7) prints "AdaptiveAvgPool2d(output_size=7)" and means (7, 7).

#include <memory>

#include "resnet/backend/pooling.h"
#include "resnet/nn/module.h"

namespace resnet::nn {

class AdaptiveAvgPool2d : public Module {
 public:
  // output_size=(out_h, out_w), printed as a tuple.
  AdaptiveAvgPool2d(int64_t out_h, int64_t out_w);
  // output_size=size (square), printed as an int.
  explicit AdaptiveAvgPool2d(int64_t size);

  int64_t out_h() const { return out_h_; }
  int64_t out_w() const { return out_w_; }

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& grad_output) override;
  // "output_size=(1, 1)" or "output_size=7".
  std::string extra_repr() const override;

 private:
  AdaptiveAvgPool2d(int64_t out_h, int64_t out_w, bool as_int);
  std::string label() const override;  // "AdaptiveAvgPool2d(output_size=(1, 1))", for messages

  int64_t out_h_, out_w_;
  bool as_int_;
  std::unique_ptr<backend::AdaptiveAvgPool2dKernel> kernel_;
  Shape saved_input_shape_;
};

}  // namespace resnet::nn
