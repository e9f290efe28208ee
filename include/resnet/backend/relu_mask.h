#pragma once
// What a ReLU's backward needs of its forward: where the output was positive, one bit per
// value. Kept instead of the f32 output, it lets that output go as soon as the layers
// after it are done with it (a residual block's output, which the next block's bf16
// convolutions keep a bf16 copy of, would otherwise stay in f32 until backward: 4 bytes a
// value against an eighth of a byte).

#include "resnet/tensor/tensor.h"

namespace resnet::backend {

struct ReluMask {
  Tensor bits;  // u8: bit i % 8 of byte i / 8 for the i-th stored value (padding included)
  Shape shape;
  Layout layout = Layout::plain;
  bool defined() const { return bits.defined(); }
};

// The mask of `dst`, a ReLU's f32 output (plain or blocked16): dst > 0.
ReluMask relu_mask(const Tensor& dst);
// The residual unit's sum and final ReLU in one pass that also writes the mask:
// out = relu(a + b) (what oneDNN's add with a ReLU post-op writes, bit for bit: +0 for a
// negative sum or a NaN),
// mask = out > 0. With `bf16_rounding`, the same pass rounds out to bf16 and attaches that
// to it (Tensor::attach_rounded) for the bf16 convolutions that read it next (only for a
// plain or blocked16 layout, those their own conversion writes). a and b are f32 of one
// shape and layout.
struct MaskedSum {
  Tensor out;
  ReluMask mask;
};
MaskedSum add_relu_masked(const Tensor& a, const Tensor& b, bool bf16_rounding);
// diff_src = diff_dst where the mask is set, else 0: relu_backward(diff_dst, dst) bit for
// bit. diff_dst must have the mask's shape and layout.
Tensor relu_backward(const Tensor& diff_dst, const ReluMask& mask);

}  // namespace resnet::backend
