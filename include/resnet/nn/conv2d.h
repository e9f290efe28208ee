#pragma once
// Conv2d: torch.nn.Conv2d with zero padding.
// Input [N, in_channels, H, W] -> output [N, out_channels, OH, OW],
// OH = floor((H + 2*padding - dilation*(kernel-1) - 1) / stride) + 1.
// Parameters: weight [out_channels, in_channels/groups, KH, KW], bias [out_channels]
// (only when bias is true). Initialized as PyTorch does by default.

#include <memory>
#include <optional>

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

// The backend's description of the convolution these options make: the one translation
// from the layer's options to the kernels' (training Conv2d, fused inference chains and
// compiled models all go through it).
backend::Conv2dConfig to_backend_config(const Conv2dOptions& options);

class Conv2d : public Module {
 public:
  explicit Conv2d(const Conv2dOptions& options);

  const Conv2dOptions& options() const { return options_; }
  Parameter& weight() { return *weight_; }
  // Null when the layer has no bias.
  Parameter* bias() { return bias_; }
  // The layout of the output: the input's (default), or always blocked16 (set by
  // networks whose stem turns plain images into blocked activations).
  void set_output_layout(std::optional<Layout> layout) { output_layout_ = layout; }
  // Backward for the weights alone, when nobody needs the input's gradient (a network's
  // first layer in training); the gradient is added into weight().grad as by backward().
  // A frozen layer (no parameter requires_grad) computes no weight gradient at all.
  void backward_weights_only(const Tensor& grad_output);
  // keep false: forward does not keep its input, which the block that owns this layer
  // holds (or recomputes) and hands back with supply_input before backward.
  void set_keeps_input(bool keep) { keeps_input_ = keep; }
  void supply_input(const Tensor& x) { saved_input_ = x; }
  // The output of the last forward again, from the input it kept: the same primitive on
  // the same values, so bit for bit. For a BN after this layer that does not keep its
  // input (BatchNorm2d::set_keeps_input) when this layer is cheap to run twice.
  Tensor recompute_output();
  // Whether the kernel may use Winograd (backend::Conv2dKernel::set_winograd).
  void set_winograd(bool allowed) { kernel_->set_winograd(allowed); }
  // f32 or bf16 (mixed precision: nn/precision.h).
  void set_compute_type(DType type) { kernel_->set_compute_type(type); }
  DType compute_type() const { return kernel_->compute_type(); }
  // The forward output's type (backend::Conv2dKernel::set_output_type); an observed
  // forward is always reported in f32.
  void set_output_type(DType type) { kernel_->set_output_type(type); }
  // backward's input gradient type (backend::Conv2dKernel::set_grad_input_type).
  void set_grad_input_type(DType type) { kernel_->set_grad_input_type(type); }
  // A 1x1 kernel: the cheapest convolution to run again.
  bool is_pointwise() const { return options_.kernel_h == 1 && options_.kernel_w == 1; }

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& grad_output) override;
  std::string extra_repr() const override;
  std::string label() const override;  // "Conv2d(64, 128)", for messages

  void release_saved() override { saved_input_ = Tensor(); }
  bool accepts(DType type) const override { return type == DType::f32 || type == compute_type(); }

 private:
  Conv2dOptions options_;
  Parameter* weight_;
  Parameter* bias_ = nullptr;
  std::unique_ptr<backend::Conv2dKernel> kernel_;
  bool needs_weight_grad() const;
  // `t` in the kernel's compute type (itself in f32; rounded to bf16, same layout, in
  // mixed precision).
  Tensor in_compute_type(const Tensor& t) const;

  Tensor saved_input_;
  std::optional<Layout> output_layout_;
  bool keeps_input_ = true;
};

}  // namespace resnet::nn
