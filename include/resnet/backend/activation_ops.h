#pragma once
// The inference primitives of a compiled graph other than convolution, working on
// activations in the layout and precision the previous primitive left them in, so that
// nothing is reordered between a convolution and the pool or classifier after it.
//
// Threads: one kernel instance per thread at a time (its plans hold state, such as
// primitives made on first use); different instances may run on different threads at
// once, and the caches they share (reorders, element-wise primitives) are locked.

#include <memory>

#include "resnet/backend/activation.h"

namespace resnet::backend {

struct Pool2dConfig {
  enum class Kind { max, avg_exclude_pad, avg_include_pad } kind = Kind::max;
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1;
  int64_t pad_t = 0, pad_l = 0, pad_b = 0, pad_r = 0;
  bool global = false;  // the kernel is the whole input (GlobalAveragePool)
};

class ActivationPool2d {
 public:
  explicit ActivationPool2d(const Pool2dConfig& config);
  ~ActivationPool2d();
  ActivationPool2d(const ActivationPool2d&) = delete;
  ActivationPool2d& operator=(const ActivationPool2d&) = delete;

  // out_h/out_w: the output size the graph computed (ceil_mode is expressed through the
  // right/bottom padding given to oneDNN).
  Activation run(const Activation& src, int64_t out_h, int64_t out_w, ActivationPool* pool);

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
  Tensor run(const Activation& src);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Element-wise fallbacks for graphs whose ReLU or Add could not be fused into a
// convolution: computed in the first input's layout and precision.
Activation activation_relu(const Activation& x, ActivationPool* pool);
Activation activation_add(const Activation& a, const Activation& b, bool relu,
                          ActivationPool* pool);
// The activation converted to `dtype` (f32 or bf16), in plain or nChw16c layout.
Activation activation_convert(const Activation& x, DType dtype, bool blocked, ActivationPool* pool);

// Whether oneDNN runs bf16 natively here (AVX512_BF16 or AMX); without it, bf16 is
// emulated and slower than f32.
bool cpu_has_native_bf16();
// Whether int8 has VNNI here (AVX512_VNNI or AVX-VNNI).
bool cpu_has_vnni();

}  // namespace resnet::backend
