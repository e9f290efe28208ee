#pragma once
// Inference convolutions with everything that follows them fused in, running on
// activation tensors that stay in oneDNN's blocked (or channels-last) layout from one
// convolution to the next:
//   dst = clip?(relu?(conv(src, weight) + bias + residual?))
// The residual add and the ReLU are oneDNN post-ops (sum, eltwise), so neither costs a
// pass over memory of its own. Weights are packed into the primitive's layout once per
// input shape and repacked only when the weight tensors change (Tensor::version).
// Descriptors and algorithm come from the convolution planner Conv2dKernel uses.
//
// Threads: one kernel instance per thread at a time (its plans hold state, such as
// packed weights); different instances may run on different threads at
// once, and the caches they share (reorders, element-wise primitives) are locked.

#include <memory>
#include <string>
#include <vector>

#include "resnet/backend/conv2d.h"
#include "resnet/tensor/tensor.h"

namespace resnet::backend {

struct FusedConv2dConfig {
  Conv2dConfig conv;          // conv.bias is ignored: the fused conv always has a bias
  bool add_residual = false;  // add a residual activation of the output's shape
  bool relu = false;          // ReLU after the (optional) add
  // Clip to [clip_min, clip_max] last (ONNX's Clip, ReLU6's [0, 6]): f32 and bf16 only.
  bool clip = false;
  float clip_min = 0.f, clip_max = 0.f;
  // Precision of the activations and weights: f32, or bf16 (AVX512_BF16 where the CPU
  // has it). The bias and the accumulation stay f32.
  DType dtype = DType::f32;
  // Ask for the output in nChw16c (when the channels allow) rather than oneDNN's choice
  // for this shape, which is often NHWC: the blocked layout is the one oneDNN's Winograd
  // and jit direct convolutions read, so one blocked stem keeps the whole net blocked.
  bool blocked_output = false;
  // dtype i8: int8 inference with symmetric scales (real = quantized / scale). The input
  // is u8 when it is non-negative (after a ReLU), else s8; the output is u8 when a ReLU
  // ends the conv, else s8. Weights are s8 with one scale per output channel, computed
  // here from the weights (127 / max |w|) unless weight_steps gives each channel's step
  // (a quantized file's grid: real = q * step); the bias is folded into the s32
  // accumulator.
  struct Int8 {
    float src_scale = 1.f, dst_scale = 1.f, residual_scale = 1.f;
    bool src_unsigned = false;
    std::vector<float> weight_steps;
    // A quantized file's range for the convolution's own result (before the residual
    // add), in real units: with clamp_own, the result saturates to [own_lowest,
    // own_highest] first, as the file's QuantizeLinear there does (a post-op, so the
    // fusion stays). Its rounding onto the file's step is not reproduced.
    bool clamp_own = false;
    float own_lowest = 0.f, own_highest = 0.f;
  } int8;
};

// The int8 grid of a weight [OC, ...] without weight_steps: per output channel, the step
// max |w| / 127 (1 for an all-zero channel), symmetric, so that max |w| is 127 steps.
std::vector<float> int8_weight_steps(const Tensor& weight);

class FusedConv2d {
 public:
  explicit FusedConv2d(const FusedConv2dConfig& config);
  ~FusedConv2d();
  FusedConv2d(const FusedConv2d&) = delete;
  FusedConv2d& operator=(const FusedConv2d&) = delete;

  // weight [OC, IC/groups, KH, KW], bias [OC]. The tensors are kept by reference
  // (shared storage) and repacked when their version changes.
  void set_weights(const Tensor& weight, const Tensor& bias);
  // src: [N, IC, H, W] in any layout; f32 or bf16 as configured, or for int8 f32 or
  // the input type (then its values carry config.int8.src_scale). `residual` (required
  // iff add_residual) is consumed: when the caller hands over the only reference, the
  // output is written into its storage. The output is in the layout the primitive
  // writes, its storage from the storage pool.
  Tensor run(const Tensor& src, Tensor residual = Tensor());
  // The implementation oneDNN chose for the last input shape run ("brg:avx512_core", ...).
  std::string implementation() const;
  // How many times the weights were packed into a primitive's layout: once per layout
  // the input shapes needed, and again after the weights change.
  int64_t weight_packs() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace resnet::backend
