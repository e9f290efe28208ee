#pragma once
// Tensor operations on plain f32 tensors of any rank (1 to 8), through oneDNN: what the
// compiled model runs for the ops other exporters write around a ResNet and for ONNX's
// node tests (NumPy-broadcast arithmetic with a constant, Clip, ReduceMean, Softmax on
// any axis, Transpose, MatMul). None is on the hot path of a ResNet, so each call
// creates its primitive rather than caching it; that also makes every function safe to
// call from several threads at once.

#include <vector>

#include "resnet/tensor/tensor.h"

namespace resnet::backend {

enum class BinaryOp { add, sub, mul, div };

// a OP b with NumPy's broadcasting; `out_shape` is the broadcast of the two shapes.
Tensor tensor_binary(BinaryOp op, const Tensor& a, const Tensor& b, const Shape& out_shape);
// min(max(x, lo), hi).
Tensor tensor_clip(const Tensor& x, float lo, float hi);
// The mean over the axes where `reduced` is true, keeping them as size 1.
Tensor tensor_reduce_mean(const Tensor& x, const std::vector<bool>& reduced);
// Softmax along `axis`.
Tensor tensor_softmax(const Tensor& x, size_t axis);
// y's axis i is x's axis perm[i].
Tensor tensor_transpose(const Tensor& x, const std::vector<size_t>& perm);
// a b with NumPy's matmul rules for batches; b has at least 2 dimensions, a at least 1.
Tensor tensor_matmul(const Tensor& a, const Tensor& b, const Shape& out_shape);

}  // namespace resnet::backend
