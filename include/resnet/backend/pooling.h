#pragma once
// 2-D pooling on plain NCHW f32 tensors through oneDNN (pooling_forward /
// pooling_backward). Primitives are created on first use for an input shape and reused
// after. Pooling is memory-bound, so it works in the input's plain layout: no reorders.
//
// MaxPool2dKernel: max over kernel x kernel windows, -inf padding (PyTorch semantics,
// ceil_mode false, dilation 1). Src [N, C, H, W] -> dst [N, C, OH, OW],
// OH = floor((H + 2*pad - kernel) / stride) + 1. A training forward fills an opaque
// workspace (which element won each window); its backward needs that workspace.
//
// AdaptiveAvgPool2dKernel: torch.nn.AdaptiveAvgPool2d. Src [N, C, H, W] -> dst
// [N, C, OH, OW]; output cell (i, j) averages rows [floor(i*H/OH), ceil((i+1)*H/OH)) and
// columns [floor(j*W/OW), ceil((j+1)*W/OW)). When OH divides H and OW divides W (the
// global 1x1 case among them) the windows are a regular grid and oneDNN pools them;
// otherwise windows differ in size, which oneDNN cannot express, and a plain loop does.
//
// Threads: one kernel instance per thread at a time (its plans hold state, such as
// primitives made on first use); different instances may run on different threads at
// once, and the caches they share (reorders, element-wise primitives) are locked.

#include <memory>

#include "resnet/tensor/tensor.h"

namespace resnet::backend {

class MaxPool2dKernel {
 public:
  // Square kernel, stride and padding; the caller has checked kernel >= 1, stride >= 1
  // and 0 <= pad <= kernel / 2 (which keeps every window on at least one real element).
  MaxPool2dKernel(int64_t kernel, int64_t stride, int64_t pad);
  ~MaxPool2dKernel();
  MaxPool2dKernel(const MaxPool2dKernel&) = delete;
  MaxPool2dKernel& operator=(const MaxPool2dKernel&) = delete;

  int64_t out_size(int64_t in) const;

  // src [N, C, H, W] -> dst [N, C, OH, OW]. With a non-null `workspace` this is a training
  // forward and *workspace receives the bytes backward needs (u8 tensor); with null it is
  // an inference forward that keeps nothing.
  Tensor forward(const Tensor& src, Tensor* workspace);
  // diff_dst [N, C, OH, OW] -> diff_src of `src_shape`, routing each gradient to the
  // element that won its window in the training forward that filled `workspace`.
  Tensor backward(const Tensor& diff_dst, const Shape& src_shape, const Tensor& workspace);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class AdaptiveAvgPool2dKernel {
 public:
  AdaptiveAvgPool2dKernel(int64_t out_h, int64_t out_w);
  ~AdaptiveAvgPool2dKernel();
  AdaptiveAvgPool2dKernel(const AdaptiveAvgPool2dKernel&) = delete;
  AdaptiveAvgPool2dKernel& operator=(const AdaptiveAvgPool2dKernel&) = delete;

  // src [N, C, H, W] (H, W >= 1) -> dst [N, C, out_h, out_w].
  Tensor forward(const Tensor& src);
  // diff_dst [N, C, out_h, out_w] -> diff_src of `src_shape`: each output's gradient
  // spread evenly over its window (summed where windows overlap).
  Tensor backward(const Tensor& diff_dst, const Shape& src_shape);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace resnet::backend
