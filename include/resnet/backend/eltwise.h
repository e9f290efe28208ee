#pragma once
// Element-wise operations through oneDNN (eltwise, binary and reorder primitives,
// cached per shape and layout). Operands of one call share shape and layout; results
// have the operands' layout. Safe to call from several threads at once: the primitive
// caches are shared by all callers and locked.

#include "resnet/tensor/tensor.h"

namespace resnet::backend {

// dst = max(src, 0).
Tensor relu_forward(const Tensor& src);
// diff_src = diff_dst where dst > 0, else 0 (dst is the forward's output).
Tensor relu_backward(const Tensor& diff_dst, const Tensor& dst);
// dst = a + b.
Tensor add(const Tensor& a, const Tensor& b);
// dst = max(a + b, 0), in one pass (the end of a residual block).
Tensor add_relu(const Tensor& a, const Tensor& b);
// acc += x, in place.
void add_inplace(Tensor& acc, const Tensor& x);
// The same values in `layout` (the tensor itself when it already is).
Tensor to_layout(const Tensor& t, Layout layout);

}  // namespace resnet::backend
