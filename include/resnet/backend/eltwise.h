#pragma once
// Element-wise operations on plain f32 tensors through oneDNN (eltwise and binary
// primitives, cached per shape).

#include "resnet/tensor/tensor.h"

namespace resnet::backend {

// dst = max(src, 0).
Tensor relu_forward(const Tensor& src);
// diff_src = diff_dst where dst > 0, else 0 (dst is the forward's output).
Tensor relu_backward(const Tensor& diff_dst, const Tensor& dst);
// dst = a + b; shapes must match.
Tensor add(const Tensor& a, const Tensor& b);
// acc += x, in place; shapes must match.
void add_inplace(Tensor& acc, const Tensor& x);

// Sets the number of threads oneDNN and our loops use (OpenMP).
void set_num_threads(int threads);
int num_threads();

}  // namespace resnet::backend
