#pragma once
// The inference primitives of a compiled graph other than convolution, working on
// activation tensors in the layout and precision the previous primitive left them in,
// so that nothing is reordered between a convolution and the pool or classifier after
// it. Outputs take their storage from the storage pool, as every tensor does.
//
// int8 tensors store real * scale; the scale belongs to the graph value and is passed
// where a function must know it (`int8_scale`, ignored for f32 and bf16 tensors).
//
// Threads: one kernel instance per thread at a time (its plans hold state, such as
// primitives made on first use); different instances may run on different threads at
// once, and the caches they share (reorders, element-wise primitives) are locked.

#include <memory>
#include <string>
#include <vector>

#include "resnet/tensor/tensor.h"

namespace resnet::backend {

// A pool of [N, C, H, W], or of [N, C, D, H, W] with the depth fields (kernel_d, ...).
struct Pool2dConfig {
  enum class Kind { max, avg_exclude_pad, avg_include_pad } kind = Kind::max;
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1;
  int64_t pad_t = 0, pad_l = 0, pad_b = 0, pad_r = 0;
  int64_t dilation_h = 1, dilation_w = 1;                             // 1: none
  int64_t kernel_d = 1, stride_d = 1, pad_front = 0, dilation_d = 1;  // 5-D input only
  bool global = false;  // the kernel is the whole input (GlobalAveragePool)
};

class ActivationPool2d {
 public:
  explicit ActivationPool2d(const Pool2dConfig& config);
  ~ActivationPool2d();
  ActivationPool2d(const ActivationPool2d&) = delete;
  ActivationPool2d& operator=(const ActivationPool2d&) = delete;

  // out_h/out_w: the output size the graph computed (ceil_mode is expressed through the
  // right/bottom padding given to oneDNN). The output keeps the input's layout, type and
  // (int8) scale.
  Tensor run(const Tensor& src, int64_t out_h, int64_t out_w);
  // The same for a 4-D or 5-D input: `out_spatial` is {OH, OW} or {OD, OH, OW}.
  Tensor run(const Tensor& src, const std::vector<int64_t>& out_spatial);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// y = flatten(x) W^T + b, reading x ([N, C, H, W] in any layout, or [N, IN]) where it is:
// the weight is viewed as [OUT, C, H, W], which is what flatten's C, H, W order means.
class ActivationLinear {
 public:
  // dtype: the precision of the input and the weight (f32 or bf16); the output is f32.
  explicit ActivationLinear(DType dtype);
  ~ActivationLinear();
  ActivationLinear(const ActivationLinear&) = delete;
  ActivationLinear& operator=(const ActivationLinear&) = delete;

  void set_weights(const Tensor& weight, const Tensor& bias);
  Tensor run(const Tensor& src, float int8_scale = 1.f);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Element-wise fallbacks for graphs whose ReLU or Add could not be fused into a
// convolution: computed in the first input's layout and precision (f32 or bf16).
Tensor activation_relu(const Tensor& x);
Tensor activation_add(const Tensor& a, const Tensor& b, bool relu);
// Softmax over the last axis of a plain f32 [N, K] tensor.
Tensor activation_softmax(const Tensor& x);
// `x` converted to `dtype` (f32 or bf16; an int8 `x` is dequantized), in nChw16c when
// `blocked` and x is 4-D, else plain. `x` itself when it already is so.
Tensor activation_convert(const Tensor& x, float int8_scale, DType dtype, bool blocked);
// `x` as a plain f32 tensor (itself when it already is), dequantized when int8.
Tensor to_plain_f32(const Tensor& x, float int8_scale = 1.f);

// Whether oneDNN runs bf16 natively here (AVX512_BF16 or AMX); without it, bf16 is
// emulated and slower than f32.
bool cpu_has_native_bf16();
// The policy for bf16 without native support, in inference and training alike: emulated
// bf16 is slower than f32 and less exact, so f32 runs instead, and this one line says so.
// Empty where bf16 is native.
std::string bf16_fallback_note();
// Whether int8 has VNNI here (AVX512_VNNI or AVX-VNNI).
bool cpu_has_vnni();

}  // namespace resnet::backend
