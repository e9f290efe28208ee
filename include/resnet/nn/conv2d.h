#pragma once
// Conv2d: torch.nn.Conv2d with zero padding.
// Input [N, in_channels, H, W] -> output [N, out_channels, OH, OW],
// OH = floor((H + 2*padding - dilation*(kernel-1) - 1) / stride) + 1.
// Parameters: weight [out_channels, in_channels/groups, KH, KW], bias [out_channels]
// (only when bias is true). Initialized as PyTorch does by default.

#include <memory>

#include "resnet/backend/conv2d.h"
#include "resnet/nn/module.h"

namespace resnet::nn {

struct Conv2dOptions {
  int64_t in_channels = 0;   // channels of the input
  int64_t out_channels = 0;  // channels of the output
  int64_t kernel_h = 3, kernel_w = 3;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;  // zero padding on each side
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;  // in_channels and out_channels must divide by it
  bool bias = true;    // PyTorch's default

  // Square kernel, stride, padding.
  static Conv2dOptions square(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1,
                              int64_t padding = 0, bool bias = true, int64_t groups = 1);
};

class Conv2d : public Module {
 public:
  explicit Conv2d(const Conv2dOptions& options);

  const Conv2dOptions& options() const { return options_; }
  Parameter& weight() { return *weight_; }
  // Null when the layer has no bias.
  Parameter* bias() { return bias_; }

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& grad_output) override;
  std::string extra_repr() const override;

 private:
  Conv2dOptions options_;
  Parameter* weight_;
  Parameter* bias_ = nullptr;
  std::unique_ptr<backend::Conv2dKernel> kernel_;
  Tensor saved_input_;
};

}  // namespace resnet::nn
