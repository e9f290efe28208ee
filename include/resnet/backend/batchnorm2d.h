#pragma once
// Batch normalization over N, H, W per channel on f32 tensors, plain or blocked16 (in
// training, the output and the input gradient may be written in bf16),
// optionally fused with the ReLU that follows it. Statistics bookkeeping (running
// averages, unbiased variance) belongs to the module; this kernel only normalizes and
// differentiates.
//
// Training-mode statistics and every backward pass are our own loops rather than
// oneDNN's: PyTorch's CPU batch norm accumulates its per-channel sums in double
// (at::acc_type<float> is double on CPU) and oneDNN's in float; with few values per
// channel (a deep stage at a small input) float sums miss PyTorch's gradients by
// percents. Eval-mode forward, a plain affine map, runs on oneDNN.
//
// Threads: one kernel instance per thread at a time (its plans hold state, such as
// primitives made on first use); different instances may run on different threads at
// once, and the caches they share (reorders, element-wise primitives) are locked.

#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "resnet/tensor/tensor.h"

namespace resnet::backend {

// The per-channel map a training forward applied, out = x * scale[c] + shift[c] (then
// ReLU): kept instead of the output, it recomputes that output bit for bit
// (BatchNorm2dKernel::apply), so a BN+ReLU need not keep both its input and its output
// for backward. Padded to whole 16-channel blocks.
struct BatchNormAffine {
  std::vector<float> scale, shift;
  bool defined() const { return !scale.empty(); }
};

// Sums per-channel values over the processes of a data-parallel run, in place (SyncBatchNorm).
// The span holds [sums of the first kind per channel, sums of the second kind per channel,
// the value count]: all additive, so a sum over the ranks is the whole batch's.
using ChannelSumReducer = std::function<void(std::span<double>)>;

class BatchNorm2dKernel {
 public:
  explicit BatchNorm2dKernel(double eps);
  ~BatchNorm2dKernel();
  BatchNorm2dKernel(const BatchNorm2dKernel&) = delete;
  BatchNorm2dKernel& operator=(const BatchNorm2dKernel&) = delete;

  // Training mode: normalizes with the batch statistics, which it writes into
  // batch_mean [C] and batch_var [C] (biased variance). With relu, returns
  // max(0, bn(src)). The output has src's layout.
  // When affine is given, the map applied is written there. out_type bf16 writes the
  // output rounded to bf16 (to nearest even, as a oneDNN reorder of the f32 output would):
  // for a consumer that computes in bf16, that is one pass instead of an f32 output and a
  // conversion.
  Tensor forward_train(const Tensor& src, const Tensor& weight, const Tensor& bias,
                       Tensor& batch_mean, Tensor& batch_var, bool relu = false,
                       BatchNormAffine* affine = nullptr, DType out_type = DType::f32);
  // forward_train's output again, from its input and the map it wrote: the same values,
  // bit for bit, in out_type.
  Tensor apply(const Tensor& src, const BatchNormAffine& affine, bool relu,
               DType out_type = DType::f32) const;
  // Eval mode: normalizes with the given statistics (then ReLU when asked).
  Tensor forward_eval(const Tensor& src, const Tensor& weight, const Tensor& bias,
                      const Tensor& mean, const Tensor& var, bool relu = false);
  // Backward of either mode: with use_global_stats the statistics are constants
  // (eval), otherwise they are the batch's (training). When the forward fused a ReLU,
  // relu_dst is its output (defined, f32 or bf16) and masks diff_dst. Adds into
  // diff_weight and diff_bias (both undefined: no parameter gradient, and with
  // use_global_stats no reduction pass at all); returns diff_src in src's layout, in
  // grad_type (bf16: rounded as forward_train's bf16 output is).
  Tensor backward(const Tensor& diff_dst, const Tensor& src, const Tensor& weight,
                  const Tensor& mean, const Tensor& var, bool use_global_stats, Tensor& diff_weight,
                  Tensor& diff_bias, const Tensor& relu_dst = Tensor(),
                  DType grad_type = DType::f32);

  // Synchronised batch statistics: with a reducer, a training forward normalizes with the
  // mean and variance of every rank's batch together (sum x, sum x^2 and the count summed
  // over the ranks), and backward's input gradient uses the summed sum dy and
  // sum dy * (x - mean); the parameter gradients stay this rank's own (the gradient
  // reduction sums them). Null: this process's batch alone.
  void set_cross_replica_sum(ChannelSumReducer reducer) { reducer_ = std::move(reducer); }
  // The number of values per channel the last training forward normalized over (all
  // ranks' with a reducer).
  double last_train_count() const { return last_train_count_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  ChannelSumReducer reducer_;
  double last_train_count_ = 0.0;
};

}  // namespace resnet::backend
