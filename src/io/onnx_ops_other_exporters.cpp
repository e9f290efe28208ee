// Converters for the operators other exporters than torch's write around ResNet layers
// (MXNet's Model Zoo files, tf2onnx and Keras): Clip and Dropout, per-channel Mul, Sub,
// Div and Add by constants (BatchNorm written out, or input normalisation), ReduceMean
// over H and W, and Squeeze after the global pool. Each becomes an op the compiler
// already folds where it can: a per-channel affine is a BatchNormalization node, which
// folds into the convolution before it or runs as a 1x1 depthwise convolution. What does
// not fit those shapes becomes a tensor op of any rank (OpKind::add_constant, clip,
// reduce_mean, reshape, ...).
#include <algorithm>
#include <cmath>
#include <limits>

#include "onnx_importer.h"
#include "resnet/core/error.h"

namespace resnet::io::detail {

using infer::Node;
using infer::OpKind;

namespace {

bool has_zero(const Tensor& t) {
  return std::any_of(t.f32(), t.f32() + t.numel(), [](float v) { return v == 0.f; });
}

// Axes of a 4-D tensor, negatives counted from the end, sorted.
std::vector<int64_t> normalized_axes(std::vector<int64_t> axes) {
  for (int64_t& a : axes)
    if (a < 0) a += 4;
  std::sort(axes.begin(), axes.end());
  return axes;
}

}  // namespace

// Clip to [0, +inf) is a ReLU (some exporters write one so); other bounds (ReLU6's
// [0, 6]) are a clip. The bounds come from attributes before opset 11 and from optional
// inputs after.
void Importer::op_clip() {
  expect_arity(1, opset_ < 11 ? 1 : 3);
  const NodeAttributes attrs(*node_, here());
  const double inf = std::numeric_limits<double>::infinity();
  double lo = -inf, hi = inf;
  if (opset_ < 11) {
    lo = attrs.get_float("min", -inf);
    hi = attrs.get_float("max", inf);
  } else {
    auto bound = [&](int i, double fallback) {
      if (!has_input(i)) return fallback;
      const Symbol& b = constant(i, DType::f32, i == 1 ? "min" : "max");
      RESNET_CHECK(b.tensor.numel() == 1, here()
                                              << ": expected a scalar " << (i == 1 ? "min" : "max")
                                              << ", found " << b.tensor.shape_str());
      return static_cast<double>(b.tensor.f32()[0]);
    };
    lo = bound(1, -inf);
    hi = bound(2, inf);
  }
  const bool unbounded_above = hi >= static_cast<double>(std::numeric_limits<float>::max());
  if (lo == 0.0 && unbounded_above) {  // a ReLU, which fuses into the convolution before it
    define_activation(emit_unary(OpKind::relu, activation(0).value));
    return;
  }
  Node n;
  n.op = OpKind::clip;
  n.inputs = {activation(0).value};
  n.clip_min = static_cast<float>(lo);
  n.clip_max = static_cast<float>(hi);
  define_activation(emit(std::move(n)));
}

// Dropout does nothing at inference; its mask output may be named but not read.
void Importer::op_dropout() {
  // The mask is BOOL from opset 10 on (before, of the input's type): all true here.
  const int mask = opset_ >= 10 ? 1 : 0;
  expect_arity(1, opset_ < 12 ? 1 : 3, mask);
  if (opset_ >= 12 && has_input(2)) {
    const Symbol& mode = input(2);
    RESNET_CHECK(mode.kind == Symbol::Kind::constant && mode.proto &&
                     mode.proto->data_type() == onnx::TensorProto_DataType_BOOL,
                 here() << ": expected training_mode to be a constant BOOL");
    // A BOOL scalar: one byte of raw_data, or one int32_data entry.
    const onnx::TensorProto& t = *mode.proto;
    const bool on = t.raw_data().empty() ? (t.int32_data_size() > 0 && t.int32_data(0) != 0)
                                         : t.raw_data()[0] != 0;
    RESNET_CHECK(!on, here() << ": expected training_mode false (inference), found true");
  }
  Symbol s = activation(0);
  // A ratio (input 1) only matters in training; it need not even be a constant here.
  Node n;
  n.op = OpKind::dropout;
  n.inputs = {s.value};
  n.extra_outputs = read_extra_outputs(mask);
  if (n.extra_outputs.empty()) return define(s);  // y = x: an alias, no node
  const std::vector<int> extra = n.extra_outputs;
  define_activation(emit(std::move(n)));
  define_extra_outputs(extra);
}

// x + c, x * c, x - c, c - x and x / c for a constant c holding one value per channel
// ([C, 1, 1] or [1, C, 1, 1]) of a 4-D x, or one value for all: y = x * scale[c] +
// shift[c], as a BatchNormalization node with mean 0, variance 1 and epsilon 0. Any other
// constant, c / x, and x of another rank: an arithmetic tensor op with broadcasting.
void Importer::op_channel_affine(char op) {
  expect_arity(2, 2);
  const bool c0 = input(0).kind == Symbol::Kind::constant;
  const bool c1 = input(1).kind == Symbol::Kind::constant;
  RESNET_CHECK(c0 != c1, here() << ": expected one computed input and one constant, found "
                                << (c0 ? "two constants" : "two computed inputs"));
  const int xi = c0 ? 1 : 0;
  const int x = activation(xi).value;
  const Symbol& k = constant(1 - xi, DType::f32, "constant");
  const Shape& ks = k.tensor.shape();
  const bool x_4d = !g_.values[x].shape.empty() ? g_.values[x].shape.size() == 4
                                                : !shapes_;  // unknown: a network's [N, C, H, W]
  const bool one_value = k.tensor.numel() == 1 && ks.size() <= 4;
  const bool per_channel = (ks.size() == 3 && ks[1] == 1 && ks[2] == 1) ||
                           (ks.size() == 4 && ks[0] == 1 && ks[2] == 1 && ks[3] == 1);
  if (!x_4d || !(one_value || per_channel) || (op == '/' && xi == 1) ||
      (op == '/' && has_zero(k.tensor)))
    return emit_arithmetic(op, x, k, xi == 1);
  const int64_t channels =
      per_channel ? ks[ks.size() - 3] : shape_of(x, "a constant of one value")[1];
  Tensor scale = Tensor::full({channels}, 1.0f), shift({channels});
  for (int64_t ch = 0; ch < channels; ++ch) {
    const double v = k.tensor.f32()[one_value ? 0 : ch];
    float& a = scale.f32()[ch];
    float& b = shift.f32()[ch];
    switch (op) {
      case '+':
        b = static_cast<float>(v);
        break;
      case '*':
        a = static_cast<float>(v);
        break;
      case '-':  // x - c, or c - x
        a = xi == 0 ? 1.0f : -1.0f;
        b = static_cast<float>(xi == 0 ? -v : v);
        break;
      default:  // '/': x / c
        a = static_cast<float>(1.0 / v);
    }
  }
  Node n;
  n.op = OpKind::batch_norm;
  n.inputs = {x};
  n.eps = 0.0;
  n.params = {{node_name_ + ".scale", scale},
              {node_name_ + ".shift", shift},
              {node_name_ + ".mean", Tensor({channels})},
              {node_name_ + ".var", Tensor::full({channels}, 1.0f)}};
  define_activation(emit(std::move(n)));
}

// x OP k (k OP x where constant_first), k broadcast by NumPy's rules. A division by a
// constant stays a division, so that x / 0 is IEEE's inf or nan, as ONNX says.
void Importer::emit_arithmetic(char op, int x, const Symbol& k, bool constant_first) {
  Node n;
  n.op = op == '+'   ? OpKind::add_constant
         : op == '-' ? OpKind::sub_constant
         : op == '*' ? OpKind::mul_constant
                     : OpKind::div_constant;
  n.inputs = {x};
  n.constant_first = constant_first;
  n.params.push_back({k.name, k.tensor});
  define_activation(emit(std::move(n)));
}

// ReduceMean over H and W of a 4-D input is the global average pool; keepdims=0 flattens
// it too. Other axes and ranks: a reduce_mean tensor op. Axes are an attribute before
// opset 18 and an input from it; none means all (or nothing, with noop_with_empty_axes).
void Importer::op_reduce_mean() {
  expect_arity(1, opset_ < 18 ? 1 : 2);
  const NodeAttributes attrs(*node_, here());
  const std::vector<int64_t> axes = axes_of(attrs, 18);
  const bool keepdims = attrs.get_int("keepdims", 1) != 0;
  const int x = activation(0).value;
  const Shape& xs = g_.values[x].shape;
  if ((xs.size() == 4 || (xs.empty() && !shapes_)) &&
      normalized_axes(axes) == (std::vector<int64_t>{2, 3})) {
    const int pooled = emit_unary(OpKind::global_avg_pool, x);
    define_activation(keepdims ? pooled : emit_unary(OpKind::flatten, pooled));
    return;
  }
  if (axes.empty() && attrs.get_int("noop_with_empty_axes", 0) != 0) {
    define(activation(0));
    return;
  }
  Node n;
  n.op = OpKind::reduce_mean;
  n.inputs = {x};
  n.axes = axes;
  n.keepdims = keepdims;
  define_activation(emit(std::move(n)));
}

// Squeeze of H and W after the global pool ([N, C, 1, 1] -> [N, C]) is a flatten, which
// folds into the classifier; other axes are a reshape. Axes are an attribute before
// opset 13 and an input from it; none means every axis of size 1.
void Importer::op_squeeze() {
  expect_arity(1, opset_ < 13 ? 1 : 2);
  const NodeAttributes attrs(*node_, here());
  const std::vector<int64_t> axes = axes_of(attrs, 13);
  const int x = activation(0).value;
  const Shape& xs = g_.values[x].shape;
  const bool hw = (xs.size() == 4 || (xs.empty() && !shapes_)) &&
                  normalized_axes(axes) == (std::vector<int64_t>{2, 3});
  // Without known shapes, only the global pool's output is known to be [N, C, 1, 1].
  if (hw && (shapes_ ? (xs[2] == 1 && xs[3] == 1) : produced_by(x, OpKind::global_avg_pool))) {
    define_activation(emit_unary(OpKind::flatten, x));
    return;
  }
  RESNET_CHECK(shapes_ || !axes.empty(),
               here() << ": expected axes, or an input of known shape to find its size-1 axes");
  emit_reshape(infer::ShapeRule::squeeze, x, axes);
}

// Unsqueeze inserts size-1 axes; axes are an attribute before opset 13 and an input from it.
void Importer::op_unsqueeze() {
  expect_arity(1, opset_ < 13 ? 1 : 2);
  const NodeAttributes attrs(*node_, here());
  const std::vector<int64_t> axes = axes_of(attrs, 13);
  RESNET_CHECK(!axes.empty(), here() << ": expected at least one axis, found none");
  emit_reshape(infer::ShapeRule::unsqueeze, activation(0).value, axes);
}

void Importer::emit_reshape(infer::ShapeRule rule, int x, std::vector<int64_t> axes,
                            bool allowzero) {
  Node n;
  n.op = OpKind::reshape;
  n.inputs = {x};
  n.shape_rule = rule;
  n.axes = std::move(axes);
  n.allowzero = allowzero;
  define_activation(emit(std::move(n)));
}

// Softmax along `axis`: from opset 13 the one axis (default -1); before, over the input
// viewed as 2-D [prod(dims before axis), prod(dims from axis)] (default axis 1). The two
// agree where the axis is the last one, as for a classifier's [N, K].
void Importer::op_softmax() {
  expect_arity(1, 1);
  const NodeAttributes attrs(*node_, here());
  Node n;
  n.op = OpKind::softmax;
  n.inputs = {activation(0).value};
  n.axis = attrs.get_int("axis", opset_ < 13 ? 1 : -1);
  const Shape& xs = g_.values[n.inputs[0]].shape;
  const auto rank = static_cast<int64_t>(xs.size());
  n.coerce_2d = opset_ < 13 && !(n.axis == -1 || (rank > 0 && n.axis == rank - 1) ||
                                 (xs.empty() && !shapes_ && n.axis == 1));
  define_activation(emit(std::move(n)));
}

bool Importer::produced_by(int value, OpKind op) const {
  for (const Node& n : g_.nodes)
    if (n.output == value) return n.op == op;
  return false;
}

}  // namespace resnet::io::detail
