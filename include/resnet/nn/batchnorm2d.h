#pragma once
// BatchNorm2d: torch.nn.BatchNorm2d(num_features, eps=1e-5, momentum=0.1, affine=True,
// track_running_stats=True). Input and output [N, C, H, W].
// Training mode normalizes with the batch mean and biased variance, and updates
//   running_mean = (1 - momentum) * running_mean + momentum * mean
//   running_var  = (1 - momentum) * running_var  + momentum * var * n / (n - 1)
// (unbiased variance, n = N*H*W) and counts num_batches_tracked. Eval mode normalizes
// with the running statistics.
// Parameters weight [C] (1) and bias [C] (0); buffers running_mean [C] (0),
// running_var [C] (1), num_batches_tracked (i64 scalar, 0).

#include <memory>

#include "resnet/backend/batchnorm2d.h"
#include "resnet/nn/module.h"

namespace resnet::nn {

struct BatchNorm2dOptions {
  int64_t num_features = 0;
  double eps = 1e-5;
  double momentum = 0.1;
};

class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t num_features);
  explicit BatchNorm2d(const BatchNorm2dOptions& options);

  const BatchNorm2dOptions& options() const { return options_; }
  Parameter& weight() { return *weight_; }
  Parameter& bias() { return *bias_; }
  Tensor& running_mean() { return *running_mean_; }
  Tensor& running_var() { return *running_var_; }
  Tensor& num_batches_tracked() { return *num_batches_tracked_; }
  // Applies the ReLU that follows this BN in the same pass (output max(0, bn(x)), and
  // the ReLU's mask in backward) whenever forward keeps what backward needs: a training
  // saving (one kept tensor instead of two; see set_recompute_output). Without backward,
  // the BN runs alone and its owner runs the ReLU module (applies_relu()). Set by the
  // blocks that own both. `relu` is the ReLU module the fused work belongs to: observers
  // see its forward (input: this BN's output, recomputed only while observed) right after
  // this BN's, as if it had run.
  void set_fused_relu(bool on, Module* relu = nullptr) {
    fused_relu_ = on;
    relu_module_ = on ? relu : nullptr;
  }
  // Whether the next forward applies the fused ReLU (its owner then does not).
  bool applies_relu() const { return fused_relu_ && keeps_for_backward(); }
  // Frozen: neither weight nor bias requires_grad (nn/freeze.h). A frozen BN normalizes
  // with its running statistics and leaves them (and num_batches_tracked) unchanged in
  // training mode too, as fine-tuning recipes keep frozen BN layers in eval mode; its
  // backward returns the input gradient only.
  bool frozen() const { return !weight_->requires_grad && !bias_->requires_grad; }
  // With a fused ReLU in training: keep the input and the per-channel map, not the output
  // too, and recompute the output (bit for bit) when backward needs it. Set by blocks
  // whose next layer does not keep that output either (a convolution they feed it back
  // to with Conv2d::supply_input, a max-pool, which keeps its own indices).
  void set_recompute_output(bool on) { recompute_output_ = on; }
  // keep false: forward does not keep its input either; the block that owns this layer
  // recomputes it (Conv2d::recompute_output) and hands it back with supply_input before
  // this layer's output or gradient is asked for.
  void set_keeps_input(bool keep) { keeps_input_ = keep; }
  bool keeps_input() const { return keeps_input_; }
  void supply_input(const Tensor& x) { saved_input_ = x; }
  // SyncBatchNorm across the ranks of a data-parallel run (BatchNorm2dKernel's
  // set_cross_replica_sum): the running statistics then follow the whole batch too, with
  // its count in the unbiased variance. Null: per-rank statistics (the default).
  void set_cross_replica_sum(backend::ChannelSumReducer reducer) {
    kernel_->set_cross_replica_sum(std::move(reducer));
  }
  // The output of the last forward, for the layer it feeds: the kept one, or recomputed
  // (and then kept until this layer's backward).
  const Tensor& output_for_backward();
  // Mixed precision, set by the block that owns this BN and knows who reads what it
  // writes. output: the type of a fused BN+ReLU's training output (applies_relu()), bf16
  // when its one reader is a convolution computing in bf16; grad_input: the type of the
  // input gradient, bf16 when the layer before is such a convolution. Such a convolution
  // rounds what it reads to bf16 first, so writing bf16 here gives it the same values in
  // one pass instead of an f32 tensor and a conversion. Observed forwards stay f32.
  void set_output_type(DType type) { output_type_ = type; }
  void set_grad_input_type(DType type) { grad_input_type_ = type; }

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& grad_output) override;
  std::string extra_repr() const override;
  std::string label() const override;  // "BatchNorm2d(64)", for messages
  void report_forward(const Tensor& input, const Tensor& output) override;
  // Input and output gradient: f32, or bf16 from a mixed-precision convolution's forward
  // and backward-data (set_bf16_handoffs in ResidualUnit).
  bool accepts(DType type) const override { return type == DType::f32 || type == DType::bf16; }

  void release_saved() override {
    saved_input_ = saved_mean_ = saved_var_ = saved_output_ = Tensor();
    saved_affine_ = {};
  }

 private:
  // Training mode with batch statistics; `relu` fused, `observed` keeps the pre-ReLU
  // output for report_forward.
  Tensor forward_train(const Tensor& x, bool relu, bool observed);

  BatchNorm2dOptions options_;
  Parameter* weight_;
  Parameter* bias_;
  Tensor* running_mean_;
  Tensor* running_var_;
  Tensor* num_batches_tracked_;
  std::unique_ptr<backend::BatchNorm2dKernel> kernel_;
  // What backward needs: the input and the statistics it was normalized with.
  Tensor saved_input_, saved_mean_, saved_var_;
  Tensor saved_output_;                    // only with a fused ReLU: its mask
  backend::BatchNormAffine saved_affine_;  // when the output is recomputed
  bool fused_relu_ = false;
  Module* relu_module_ = nullptr;
  // While observed with a fused ReLU: this BN's own output, before the ReLU.
  Tensor observed_normalized_;
  bool recompute_output_ = false;
  bool keeps_input_ = true;
  bool saved_used_batch_stats_ = false;
  DType output_type_ = DType::f32, grad_input_type_ = DType::f32;
  DType saved_output_type_ = DType::f32;  // the last training forward's output type
};

}  // namespace resnet::nn
