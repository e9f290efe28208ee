#pragma once
// 2-D convolution on f32 tensors through oneDNN. Primitives (forward, backward-data,
// backward-weights) are created on first use for an input shape and layout and reused
// after. Blocked16 tensors are read and written in place; for plain ones oneDNN picks
// its preferred layout and the kernel reorders at its edges. The descriptors and the
// algorithm (Winograd where it pays, else direct) come from the backend's one
// convolution planner, which FusedConv2d shares.
//
// Threads: one kernel instance per thread at a time (its plans hold state, such as
// primitives made on first use); different instances may run on different threads at
// once, and the caches they share (reorders, element-wise primitives) are locked.

#include <memory>

#include "resnet/tensor/tensor.h"

namespace resnet::backend {

struct Conv2dConfig {
  int64_t in_channels = 0, out_channels = 0;
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;
  bool bias = false;

  // Output spatial size for an input of H x W (floor, as PyTorch).
  int64_t out_h(int64_t h) const {
    return (h + 2 * pad_h - dilation_h * (kernel_h - 1) - 1) / stride_h + 1;
  }
  int64_t out_w(int64_t w) const {
    return (w + 2 * pad_w - dilation_w * (kernel_w - 1) - 1) / stride_w + 1;
  }
};

class Conv2dKernel {
 public:
  explicit Conv2dKernel(const Conv2dConfig& config);
  ~Conv2dKernel();
  Conv2dKernel(const Conv2dKernel&) = delete;
  Conv2dKernel& operator=(const Conv2dKernel&) = delete;

  // src [N, IC, H, W], weight [OC, IC/groups, KH, KW] (plain), bias [OC] or undefined.
  // Returns dst [N, OC, OH, OW] in dst_layout.
  Tensor forward(const Tensor& src, const Tensor& weight, const Tensor& bias,
                 Layout dst_layout = Layout::plain);
  // Returns diff_src [N, IC, H, W] in src_layout; diff_dst has the forward output's layout.
  Tensor backward_data(const Tensor& diff_dst, const Tensor& weight, const Shape& src_shape,
                       Layout src_layout = Layout::plain);
  // Adds the weight gradient into diff_weight and, if defined, the bias gradient into
  // diff_bias (both plain).
  void backward_weights(const Tensor& diff_dst, const Tensor& src, Tensor& diff_weight,
                        Tensor& diff_bias);
  // Whether oneDNN's Winograd algorithm may be used (default true; the planner then
  // still uses it only where it pays). Its rounding error is about ten times direct
  // convolution's, which a network whose batch norms see few values per channel
  // amplifies past the numerics contract: nn::ResNet switches it off then.
  void set_winograd(bool allowed);
  // The type the convolutions compute in: f32 (default), or bf16 for mixed-precision
  // training: the input, the weights and the incoming gradient are rounded to bf16 on
  // the way in (oneDNN's AVX512_BF16 kernels), products accumulate in f32, and every
  // output (activation, input gradient, weight and bias gradients) is f32 unless
  // set_output_type / set_grad_input_type ask for bf16. The parameters' master copies
  // are never rounded.
  void set_compute_type(DType type);
  DType compute_type() const;
  // The forward output's type: f32, or bf16 with a bf16 compute type, for an output that
  // only a batch norm reads (it reads bf16 and computes in f32): the f32 result rounded,
  // bit for bit.
  void set_output_type(DType type);
  // backward_data's output type, likewise: bf16 for a gradient only a batch norm reads.
  void set_grad_input_type(DType type);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace resnet::backend
