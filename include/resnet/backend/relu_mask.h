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
// diff_src = diff_dst where the mask is set, else 0: relu_backward(diff_dst, dst) bit for
// bit. diff_dst must have the mask's shape and layout.
Tensor relu_backward(const Tensor& diff_dst, const ReluMask& mask);

}  // namespace resnet::backend
