#pragma once
// Fully connected layer on plain f32 tensors through oneDNN's inner product
// (forward, backward-data, backward-weights). dst [N, OUT] = src [N, IN] * weight^T + bias,
// weight [OUT, IN] (PyTorch's layout), bias [OUT]. Primitives are created on first use
// for a batch size and reused after; oneDNN picks its preferred weight layout and the
// kernel reorders at its edges.
//
// Threads: one kernel instance per thread at a time (its plans hold state, such as
// primitives made on first use); different instances may run on different threads at
// once, and the caches they share (reorders, element-wise primitives) are locked.

#include <memory>

#include "resnet/tensor/tensor.h"

namespace resnet::backend {

class InnerProductKernel {
 public:
  InnerProductKernel(int64_t in_features, int64_t out_features, bool bias);
  ~InnerProductKernel();
  InnerProductKernel(const InnerProductKernel&) = delete;
  InnerProductKernel& operator=(const InnerProductKernel&) = delete;

  // src [N, IN], weight [OUT, IN], bias [OUT] (ignored, may be undefined, without bias).
  // Returns dst [N, OUT].
  Tensor forward(const Tensor& src, const Tensor& weight, const Tensor& bias);
  // Returns diff_src [N, IN] from diff_dst [N, OUT].
  Tensor backward_data(const Tensor& diff_dst, const Tensor& weight);
  // Adds the weight gradient [OUT, IN] into diff_weight and, with bias, the bias gradient
  // [OUT] into diff_bias.
  void backward_weights(const Tensor& diff_dst, const Tensor& src, Tensor& diff_weight,
                        Tensor& diff_bias);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace resnet::backend
