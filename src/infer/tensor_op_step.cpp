// The compiled model's tensor ops: each graph node of OpKind softmax, add_constant, ...
// runs through the backend's tensor operations on plain f32. The nodes that write several
// outputs (MaxPool's Indices, Dropout's mask) or train (BatchNormalization training_mode)
// run as the plain loops below: they are off the hot path of inference, and oneDNN has
// no primitive that writes ONNX's Indices or the running statistics.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

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

// The window positions k in [lo, hi) of one axis whose input index first + k * dilation
// lies inside [0, in).
std::pair<int64_t, int64_t> inside(int64_t first, int64_t kernel, int64_t dilation, int64_t in) {
  const int64_t lo = first >= 0 ? 0 : (-first + dilation - 1) / dilation;
  const int64_t hi = first >= in ? 0 : std::min(kernel, (in - first + dilation - 1) / dilation);
  return {lo, std::max(lo, hi)};
}

// Max pooling of [N, C, H, W] or [N, C, D, H, W] with ONNX's Indices: the flat position
// in x of each window's first maximum, each plane counted row-major or (storage_order 1)
// column-major.
std::vector<Tensor> max_pool_with_indices(const Node& n, const Tensor& x, const Shape& y_shape) {
  const Window& w = n.window;
  const int rank = x.rank();
  // Per spatial axis (d, h, w; a 4-D input has a depth of 1): input size, output size,
  // kernel, stride, pad, dilation.
  const int64_t in[3] = {rank == 5 ? x.dim(2) : 1, x.dim(rank - 2), x.dim(rank - 1)};
  const auto r = static_cast<size_t>(rank);
  const int64_t out[3] = {rank == 5 ? y_shape[2] : 1, y_shape[r - 2], y_shape[r - 1]};
  const int64_t kernel[3] = {w.kernel_d, w.kernel_h, w.kernel_w};
  const int64_t stride[3] = {w.stride_d, w.stride_h, w.stride_w};
  const int64_t pad[3] = {w.pad_front, w.pad_t, w.pad_l};
  const int64_t dil[3] = {w.dilation_d, w.dilation_h, w.dilation_w};
  const int64_t plane = in[0] * in[1] * in[2];
  const int64_t step[3] = {n.indices_column_major ? 1 : in[1] * in[2],
                           n.indices_column_major ? in[0] : in[2],
                           n.indices_column_major ? in[0] * in[1] : 1};
  Tensor y(y_shape), idx(y_shape, DType::i64);
  float* yp = y.f32();
  int64_t* ip = idx.i64();
  for (int64_t p = 0; p < x.dim(0) * x.dim(1); ++p) {
    const float* src = x.f32() + p * plane;
    for (int64_t o0 = 0; o0 < out[0]; ++o0)
      for (int64_t o1 = 0; o1 < out[1]; ++o1)
        for (int64_t o2 = 0; o2 < out[2]; ++o2) {
          const int64_t o[3] = {o0, o1, o2};
          int64_t first[3];
          std::pair<int64_t, int64_t> k[3];
          for (int a = 0; a < 3; ++a) {
            first[a] = o[a] * stride[a] - pad[a];
            k[a] = inside(first[a], kernel[a], dil[a], in[a]);
          }
          RESNET_CHECK(
              k[0].first < k[0].second && k[1].first < k[1].second && k[2].first < k[2].second,
              describe(n) << ": a window lies entirely in the padding");
          float best = 0.f;
          int64_t best_at = -1;
          for (int64_t a = k[0].first; a < k[0].second; ++a)
            for (int64_t b = k[1].first; b < k[1].second; ++b)
              for (int64_t c = k[2].first; c < k[2].second; ++c) {
                const int64_t i0 = first[0] + a * dil[0], i1 = first[1] + b * dil[1],
                              i2 = first[2] + c * dil[2];
                const float v = src[(i0 * in[1] + i1) * in[2] + i2];
                if (best_at < 0 || v > best || (std::isnan(v) && !std::isnan(best))) {
                  best = v;
                  best_at = i0 * step[0] + i1 * step[1] + i2 * step[2];
                }
              }
          *yp++ = best;
          *ip++ = p * plane + best_at;
        }
  }
  return {y, idx};
}

// BatchNormalization with training_mode 1 over [N, C, ...]: y from the batch's mean and
// biased variance; the running mean and variance, input * momentum + batch * (1 -
// momentum). Two passes per channel, in double.
std::vector<Tensor> batch_norm_training(const Node& n, const Tensor& x) {
  const int64_t batch = x.dim(0), channels = x.dim(1);
  const int64_t inner = channels > 0 && batch > 0 ? x.numel() / (batch * channels) : 0;
  RESNET_CHECK(batch * inner > 0, describe(n) << ": training mode needs at least one value per "
                                              << "channel, found input " << x.shape_str());
  Tensor y(x.shape()), mean_out({channels}), var_out({channels});
  const double count = static_cast<double>(batch * inner), m = n.momentum;
  for (int64_t c = 0; c < channels; ++c) {
    double mean = 0, var = 0;
    for (int64_t b = 0; b < batch; ++b) {
      const float* row = x.f32() + (b * channels + c) * inner;
      for (int64_t i = 0; i < inner; ++i) mean += row[i];
    }
    mean /= count;
    for (int64_t b = 0; b < batch; ++b) {
      const float* row = x.f32() + (b * channels + c) * inner;
      for (int64_t i = 0; i < inner; ++i) var += (row[i] - mean) * (row[i] - mean);
    }
    var /= count;
    const double scale = n.params[0].value.f32()[c] / std::sqrt(var + n.eps);
    const double shift = n.params[1].value.f32()[c] - mean * scale;
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t at = (b * channels + c) * inner;
      for (int64_t i = 0; i < inner; ++i)
        y.f32()[at + i] = static_cast<float>(x.f32()[at + i] * scale + shift);
    }
    mean_out.f32()[c] = static_cast<float>(n.params[2].value.f32()[c] * m + mean * (1 - m));
    var_out.f32()[c] = static_cast<float>(n.params[3].value.f32()[c] * m + var * (1 - m));
  }
  return {y, mean_out, var_out};
}

}  // namespace

bool runs_as_loop(const Node& n) {
  return !n.extra_outputs.empty() || n.training || n.op == OpKind::dropout;
}

std::vector<Tensor> run_tensor_op_outputs(const Node& n, const Tensor& x,
                                          const std::vector<Shape>& out_shapes) {
  std::vector<Tensor> outs;
  switch (n.op) {
    case OpKind::max_pool:
      outs = max_pool_with_indices(n, x, out_shapes[0]);
      break;
    case OpKind::batch_norm:
      outs = batch_norm_training(n, x);
      break;
    case OpKind::dropout: {
      Tensor mask(x.shape(), DType::u8);
      std::memset(mask.raw(), 1, static_cast<size_t>(mask.numel()));
      outs = {x, mask};
      break;
    }
    default:
      outs = {run_tensor_op(n, x, out_shapes[0])};
      break;
  }
  outs.resize(out_shapes.size());
  return outs;
}

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
