#pragma once
// Batch normalization over N, H, W per channel on plain NCHW f32 tensors, through
// oneDNN. Statistics bookkeeping (running averages, unbiased variance) belongs to the
// module; this kernel only normalizes and differentiates.

#include <memory>

#include "resnet/tensor/tensor.h"

namespace resnet::backend {

class BatchNorm2dKernel {
 public:
  explicit BatchNorm2dKernel(double eps);
  ~BatchNorm2dKernel();
  BatchNorm2dKernel(const BatchNorm2dKernel&) = delete;
  BatchNorm2dKernel& operator=(const BatchNorm2dKernel&) = delete;

  // Training mode: normalizes with the batch statistics, which it writes into
  // batch_mean [C] and batch_var [C] (biased variance).
  Tensor forward_train(const Tensor& src, const Tensor& weight, const Tensor& bias,
                       Tensor& batch_mean, Tensor& batch_var);
  // Eval mode: normalizes with the given statistics.
  Tensor forward_eval(const Tensor& src, const Tensor& weight, const Tensor& bias,
                      const Tensor& mean, const Tensor& var);
  // Backward of either mode: with use_global_stats the statistics are constants
  // (eval), otherwise they are the batch's (training). Adds into diff_weight and
  // diff_bias; returns diff_src.
  Tensor backward(const Tensor& diff_dst, const Tensor& src, const Tensor& weight,
                  const Tensor& bias, const Tensor& mean, const Tensor& var, bool use_global_stats,
                  Tensor& diff_weight, Tensor& diff_bias);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace resnet::backend
