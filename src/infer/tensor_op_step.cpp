// The compiled model's tensor ops: each graph node of OpKind softmax, add_constant, ...
// runs through the backend's tensor operations on plain f32.
#include "plan.h"
#include "resnet/backend/activation_ops.h"
#include "resnet/backend/tensor_ops.h"
#include "resnet/core/error.h"
#include "resnet/infer/op_table.h"

namespace resnet::infer::detail {

namespace {

Tensor binary(const Node& n, backend::BinaryOp op, const Tensor& x, const Shape& out_shape) {
  const Tensor& c = n.params[0].value;
  return n.constant_first ? backend::tensor_binary(op, c, x, out_shape)
                          : backend::tensor_binary(op, x, c, out_shape);
}

Tensor softmax(const Node& n, const Tensor& x) {
  const size_t rank = static_cast<size_t>(x.rank());
  const size_t axis = normalized_axis(n, n.axis, rank);
  // A classifier's [N, K] over K: the cached primitive of every inference.
  if (rank == 2 && axis == 1) return backend::activation_softmax(x);
  if (!n.coerce_2d) return backend::tensor_softmax(x, axis);
  const int64_t rows = shape_numel(Shape(x.shape().begin(), x.shape().begin() + axis));
  const Tensor rows_view = x.reshape({rows, rows > 0 ? x.numel() / rows : 0});
  return backend::tensor_softmax(rows_view, 1).reshape(x.shape());
}

}  // namespace

Tensor run_tensor_op(const Node& n, const Tensor& x, const Shape& out_shape) {
  switch (n.op) {
    case OpKind::softmax:
      return softmax(n, x);
    case OpKind::add_constant:
      return binary(n, backend::BinaryOp::add, x, out_shape);
    case OpKind::sub_constant:
      return binary(n, backend::BinaryOp::sub, x, out_shape);
    case OpKind::mul_constant:
      return binary(n, backend::BinaryOp::mul, x, out_shape);
    case OpKind::div_constant:
      return binary(n, backend::BinaryOp::div, x, out_shape);
    case OpKind::clip:
      return backend::tensor_clip(x, n.clip_min, n.clip_max);
    case OpKind::reduce_mean:
      return backend::tensor_reduce_mean(x, reduced_axes(n, static_cast<size_t>(x.rank())))
          .reshape(out_shape);
    case OpKind::reshape:
      return x.reshape(out_shape);
    case OpKind::transpose:
      return backend::tensor_transpose(x, permutation(n, static_cast<size_t>(x.rank())));
    case OpKind::matmul:
      return backend::tensor_matmul(x, n.params[0].value, out_shape);
    default:
      RESNET_FAIL(describe(n) << ": is not a tensor op");
  }
}

}  // namespace resnet::infer::detail
