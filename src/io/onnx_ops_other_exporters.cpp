// Converters for the operators other exporters than torch's write around ResNet layers
// (MXNet's Model Zoo files, tf2onnx and Keras): Clip and Dropout, per-channel Mul, Sub,
// Div and Add by constants (BatchNorm written out, or input normalisation), ReduceMean
// over H and W, and Squeeze after the global pool. Each becomes an op the compiler
// already folds: a per-channel affine is a BatchNormalization node, which folds into the
// convolution before it or runs as a 1x1 depthwise convolution.
#include <algorithm>
#include <cmath>
#include <limits>

#include "onnx_importer.h"
#include "resnet/core/error.h"

namespace resnet::io::detail {

using infer::Node;
using infer::OpKind;

namespace {

// Axes of a 4-D tensor, negatives counted from the end, sorted.
std::vector<int64_t> normalized_axes(std::vector<int64_t> axes) {
  for (int64_t& a : axes)
    if (a < 0) a += 4;
  std::sort(axes.begin(), axes.end());
  return axes;
}

}  // namespace

// Clip to [0, +inf) is a ReLU (some exporters write one so); its bounds come from
// attributes before opset 11 and from optional inputs after.
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
  RESNET_CHECK(lo == 0.0 && unbounded_above,
               here() << ": expected bounds [0, inf) (a ReLU), found [" << lo << ", " << hi
                      << "]; other bounds (such as ReLU6's [0, 6]) are not supported");
  define_activation(emit_unary(OpKind::relu, activation(0).value));
}

// Dropout does nothing at inference; its mask output may be named but not read.
void Importer::op_dropout() {
  expect_arity(1, opset_ < 12 ? 1 : 3);
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
  define(s);
}

// x + c, x * c, x - c, c - x and x / c for a constant c holding one value per channel
// ([C, 1, 1] or [1, C, 1, 1]) or one value for all: y = x * scale[c] + shift[c], as a
// BatchNormalization node with mean 0, variance 1 and epsilon 0.
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
  const bool one_value = k.tensor.numel() == 1 && ks.size() <= 4;
  const bool per_channel = (ks.size() == 3 && ks[1] == 1 && ks[2] == 1) ||
                           (ks.size() == 4 && ks[0] == 1 && ks[2] == 1 && ks[3] == 1);
  RESNET_CHECK(one_value || per_channel,
               here() << ": expected the constant '" << k.name
                      << "' to hold one value per channel ([C, 1, 1] or [1, C, 1, 1]) or one "
                         "value, found "
                      << k.tensor.shape_str());
  const int64_t channels =
      per_channel ? ks[ks.size() - 3] : shape_of(x, "a constant of one value")[1];
  RESNET_CHECK(op != '/' || xi == 0,
               here() << ": divides a constant by a computed value, which is not supported");
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
        RESNET_CHECK(v != 0.0,
                     here() << ": divides by zero in channel " << ch << " of '" << k.name << "'");
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

// ReduceMean over H and W is the global average pool; keepdims=0 flattens it too. Axes
// are an attribute before opset 18 and an input from it.
void Importer::op_reduce_mean() {
  expect_arity(1, opset_ < 18 ? 1 : 2);
  const NodeAttributes attrs(*node_, here());
  const std::vector<int64_t> axes = axes_of(attrs, 18);
  RESNET_CHECK(
      normalized_axes(axes) == (std::vector<int64_t>{2, 3}),
      here() << ": expected the mean over H and W (axes [2, 3]), found axes " << ints_str(axes));
  const int pooled = emit_unary(OpKind::global_avg_pool, activation(0).value);
  const bool keepdims = attrs.get_int("keepdims", 1) != 0;
  define_activation(keepdims ? pooled : emit_unary(OpKind::flatten, pooled));
}

// Squeeze of H and W after the global pool ([N, C, 1, 1] -> [N, C]) is a flatten. Axes
// are an attribute before opset 13 and an input from it.
void Importer::op_squeeze() {
  expect_arity(1, opset_ < 13 ? 1 : 2);
  const NodeAttributes attrs(*node_, here());
  const std::vector<int64_t> axes = axes_of(attrs, 13);
  RESNET_CHECK(
      normalized_axes(axes) == (std::vector<int64_t>{2, 3}),
      here() << ": expected to squeeze H and W (axes [2, 3]), found axes " << ints_str(axes));
  const int x = activation(0).value;
  // Without known shapes, only the global pool's output is known to be [N, C, 1, 1].
  const bool ones = shapes_ ? (shape_of(x, "Squeeze")[2] == 1 && shape_of(x, "Squeeze")[3] == 1)
                            : produced_by(x, OpKind::global_avg_pool);
  RESNET_CHECK(ones, here() << ": expected an input of height and width 1, found "
                            << (shapes_ ? shape_str(g_.values[x].shape)
                                        : std::string("one of unknown height and width")));
  define_activation(emit_unary(OpKind::flatten, x));
}

// A classifier's final Softmax over the classes of [N, K]. Before opset 13 the default
// axis is 1 (over the input coerced to 2-D), from 13 it is -1: for [N, K] both are K.
void Importer::op_softmax() {
  expect_arity(1, 1);
  const NodeAttributes attrs(*node_, here());
  const int64_t axis = attrs.get_int("axis", opset_ < 13 ? 1 : -1);
  RESNET_CHECK(axis == 1 || axis == -1,
               here() << ": expected the softmax over the classes of [N, K] (axis 1 or -1), found "
                         "axis "
                      << axis);
  define_activation(emit_unary(OpKind::softmax, activation(0).value));
}

bool Importer::produced_by(int value, OpKind op) const {
  for (const Node& n : g_.nodes)
    if (n.output == value) return n.op == op;
  return false;
}

}  // namespace resnet::io::detail
