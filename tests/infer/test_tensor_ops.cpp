// The tensor ops of any rank (OpKind::add_constant ... matmul, softmax on any axis): each
// on odd shapes of ranks 1 to 5, checked three ways: the reference interpreter against
// values computed here by hand, and the compiled model (oneDNN) against the reference.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "resnet/core/error.h"
#include "resnet/infer/compiled_model.h"
#include "resnet/infer/op_table.h"
#include "resnet/infer/reference_run.h"
#include "support/deterministic_weights.h"

namespace resnet::infer {
namespace {

// input -> `n` (its input set here) as a whole graph.
Graph one_op(Node n) {
  Graph g;
  g.add_value("input");
  n.name = "op";
  n.inputs = {0};
  g.output = g.add_node(std::move(n));
  return g;
}

Node op(OpKind kind) {
  Node n;
  n.op = kind;
  return n;
}

Tensor input(Shape shape, int seed = 1) {
  return testing::deterministic_tensor(seed, "x", std::move(shape));
}

// Runs both engines; returns the reference's output after checking the compiled one
// agrees with it.
Tensor run_both(const Graph& g, const Tensor& x) {
  const Tensor want = run_reference(g, x);
  CompiledModel compiled(g);
  const Tensor got = compiled.run(x);
  EXPECT_EQ(got.shape(), want.shape());
  if (got.shape() == want.shape()) {
    EXPECT_LE(max_abs_diff(got, want), 1e-5f * std::max(1.0f, max_abs(want)));
  }
  return want;
}

// Row-major index of `idx` in `shape`.
int64_t at(const Shape& shape, const std::vector<int64_t>& idx) {
  int64_t i = 0;
  for (size_t k = 0; k < shape.size(); ++k) i = i * shape[k] + idx[k];
  return i;
}

TEST(TensorOps, ArithmeticBroadcastsBothWays) {
  const Tensor x = input({3, 1, 5});
  // The constant is larger than x along axis 1 and has an extra leading axis: the
  // output [2, 3, 4, 5] is neither operand's shape.
  const Tensor c = testing::deterministic_tensor(2, "c", {2, 1, 4, 1});
  for (OpKind kind :
       {OpKind::add_constant, OpKind::sub_constant, OpKind::mul_constant, OpKind::div_constant})
    for (bool first : {false, true}) {
      SCOPED_TRACE(std::string(op_name(kind)) + (first ? " constant first" : ""));
      Node n = op(kind);
      n.constant_first = first;
      Tensor k = c.clone();
      if (kind == OpKind::div_constant)  // keep divisors away from 0
        for (int64_t i = 0; i < k.numel(); ++i) k.f32()[i] = std::fabs(k.f32()[i]) + 0.5f;
      Tensor xs = x.clone();
      if (kind == OpKind::div_constant && first)
        for (int64_t i = 0; i < xs.numel(); ++i) xs.f32()[i] = std::fabs(xs.f32()[i]) + 0.5f;
      n.params = {{"c", k}};
      const Tensor y = run_both(one_op(n), xs);
      ASSERT_EQ(y.shape(), (Shape{2, 3, 4, 5}));
      for (int64_t a = 0; a < 2; ++a)
        for (int64_t b = 0; b < 3; ++b)
          for (int64_t h = 0; h < 4; ++h)
            for (int64_t w = 0; w < 5; ++w) {
              float p = xs.f32()[b * 5 + w], q = k.f32()[a * 4 + h];
              if (first) std::swap(p, q);
              const float want = kind == OpKind::add_constant   ? p + q
                                 : kind == OpKind::sub_constant ? p - q
                                 : kind == OpKind::mul_constant ? p * q
                                                                : p / q;
              ASSERT_FLOAT_EQ(y.f32()[at(y.shape(), {a, b, h, w})], want);
            }
    }
}

TEST(TensorOps, ClipBoundsEitherSide) {
  Node n = op(OpKind::clip);
  n.clip_min = -0.25f;
  n.clip_max = 0.5f;
  const Tensor x = input({7});
  const Tensor y = run_both(one_op(n), x);
  for (int64_t i = 0; i < 7; ++i)
    EXPECT_EQ(y.f32()[i], std::min(std::max(x.f32()[i], -0.25f), 0.5f));
  n.clip_min = 0.5f;
  n.clip_max = -0.25f;
  EXPECT_THROW(one_op(n).validate(), Error);
}

TEST(TensorOps, ReduceMeanOverAnyAxes) {
  const Tensor x = input({2, 3, 5});
  struct Case {
    std::vector<int64_t> axes;
    bool keepdims;
    Shape out;
  };
  for (const Case& c : {Case{{-1}, true, {2, 3, 1}}, Case{{0, 2}, false, {3}},
                        Case{{}, true, {1, 1, 1}}, Case{{}, false, {}}}) {
    Node n = op(OpKind::reduce_mean);
    n.axes = c.axes;
    n.keepdims = c.keepdims;
    const Tensor y = run_both(one_op(n), x);
    ASSERT_EQ(y.shape(), c.out);
    if (c.axes == std::vector<int64_t>{0, 2}) {
      for (int64_t j = 0; j < 3; ++j) {
        double sum = 0;
        for (int64_t i = 0; i < 2; ++i)
          for (int64_t k = 0; k < 5; ++k) sum += x.f32()[at(x.shape(), {i, j, k})];
        EXPECT_NEAR(y.f32()[j], sum / 10, 1e-6);
      }
    }
  }
  Node twice = op(OpKind::reduce_mean);
  twice.axes = {1, -2};
  EXPECT_THROW(one_op(twice).infer_shapes({2, 3, 5}), Error);
}

TEST(TensorOps, SoftmaxAlongAnAxisAndOverTheTwoDView) {
  const Tensor x = input({2, 3, 4});
  Node along = op(OpKind::softmax);
  along.axis = 1;
  Tensor y = run_both(one_op(along), x);
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t k = 0; k < 4; ++k) {
      double sum = 0;
      for (int64_t j = 0; j < 3; ++j) sum += y.f32()[at(y.shape(), {i, j, k})];
      EXPECT_NEAR(sum, 1.0, 1e-6);
    }
  // Before opset 13: axis 1 of [2, 3, 4] normalises each of the 2 rows of 12 values.
  Node coerced = along;
  coerced.coerce_2d = true;
  y = run_both(one_op(coerced), x);
  for (int64_t i = 0; i < 2; ++i) {
    double sum = 0;
    for (int64_t j = 0; j < 12; ++j) sum += y.f32()[i * 12 + j];
    EXPECT_NEAR(sum, 1.0, 1e-6);
  }
}

TEST(TensorOps, TransposeOfFiveDimensions) {
  Node n = op(OpKind::transpose);
  n.axes = {4, 0, 2, 1, 3};
  const Tensor x = input({2, 3, 1, 4, 5});
  const Tensor y = run_both(one_op(n), x);
  ASSERT_EQ(y.shape(), (Shape{5, 2, 1, 3, 4}));
  EXPECT_EQ(y.f32()[at(y.shape(), {3, 1, 0, 2, 1})], x.f32()[at(x.shape(), {1, 2, 0, 1, 3})]);
  Node reversed = op(OpKind::transpose);  // no perm: the axes reversed
  EXPECT_EQ(run_both(one_op(reversed), x).shape(), (Shape{5, 4, 1, 3, 2}));
  n.axes = {0, 0, 1, 2, 3};
  EXPECT_THROW(one_op(n).infer_shapes(x.shape()), Error);
}

TEST(TensorOps, MatmulBroadcastsBatches) {
  Node n = op(OpKind::matmul);
  n.params = {{"b", testing::deterministic_tensor(2, "b", {5, 4, 2})}};
  const Tensor& b = n.params[0].value;
  const Tensor x = input({2, 1, 3, 4});
  const Tensor y = run_both(one_op(n), x);
  ASSERT_EQ(y.shape(), (Shape{2, 5, 3, 2}));
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 5; ++j)
      for (int64_t r = 0; r < 3; ++r)
        for (int64_t c = 0; c < 2; ++c) {
          double sum = 0;
          for (int64_t k = 0; k < 4; ++k)
            sum += static_cast<double>(x.f32()[at(x.shape(), {i, 0, r, k})]) *
                   b.f32()[at(b.shape(), {j, k, c})];
          ASSERT_NEAR(y.f32()[at(y.shape(), {i, j, r, c})], sum, 1e-5);
        }
  // A vector times a matrix drops its row axis.
  EXPECT_EQ(run_both(one_op(n), input({4})).shape(), (Shape{5, 2}));
  EXPECT_THROW(one_op(n).infer_shapes({3, 5}), Error);
}

TEST(TensorOps, ReshapeRules) {
  const Tensor x = input({2, 1, 3, 1});
  struct Case {
    ShapeRule rule;
    std::vector<int64_t> axes;
    Shape out;
  };
  for (const Case& c :
       {Case{ShapeRule::reshape, {0, -1}, {2, 3}}, Case{ShapeRule::reshape, {3, 0, 2}, {3, 1, 2}},
        Case{ShapeRule::flatten, {0}, {1, 6}}, Case{ShapeRule::flatten, {-1}, {6, 1}},
        Case{ShapeRule::squeeze, {}, {2, 3}}, Case{ShapeRule::squeeze, {-1}, {2, 1, 3}},
        Case{ShapeRule::unsqueeze, {0, -1}, {1, 2, 1, 3, 1, 1}}}) {
    Node n = op(OpKind::reshape);
    n.shape_rule = c.rule;
    n.axes = c.axes;
    const Tensor y = run_both(one_op(n), x);
    ASSERT_EQ(y.shape(), c.out);
    for (int64_t i = 0; i < y.numel(); ++i) ASSERT_EQ(y.f32()[i], x.f32()[i]);
  }
  Node bad = op(OpKind::reshape);
  bad.shape_rule = ShapeRule::squeeze;
  bad.axes = {2};  // size 3
  EXPECT_THROW(one_op(bad).infer_shapes(x.shape()), Error);
  bad.shape_rule = ShapeRule::reshape;
  bad.axes = {4, -1};  // 6 values do not split into rows of 4
  EXPECT_THROW(one_op(bad).infer_shapes(x.shape()), Error);
  // Sizes a file may lie about: products past 2^40 and ranks past 8 are refused, never
  // overflowed.
  bad.axes = {int64_t{1} << 30, int64_t{1} << 30, 0};
  EXPECT_THROW(one_op(bad).infer_shapes(x.shape()), Error);
  bad.axes = std::vector<int64_t>(9, 1);
  EXPECT_THROW(one_op(bad).infer_shapes(x.shape()), Error);
  bad.shape_rule = ShapeRule::flatten;
  bad.axes = {1};
  EXPECT_THROW(one_op(bad).infer_shapes({1 << 20, 1 << 20, 1 << 21}), Error);
}

// ReLU6 after a convolution is the convolution's last post-op (as a ReLU is), and gives
// what the reference gives; a clip whose input has another reader stays a step.
TEST(TensorOps, ClipAfterAConvolutionIsFused) {
  for (bool shared : {false, true}) {
    Graph g;
    g.add_value("input");
    Node conv = op(OpKind::conv);
    conv.name = "conv";
    conv.inputs = {0};
    conv.window.kernel_h = conv.window.kernel_w = 3;
    conv.window.pad_t = conv.window.pad_l = conv.window.pad_b = conv.window.pad_r = 1;
    Tensor w = testing::deterministic_tensor(4, "w", {16, 3, 3, 3});
    for (float& v : w.values()) v *= 8.f;  // outputs well past 6 and below 0
    conv.params = {{"w", w}};
    const int c = g.add_node(conv);
    Node clip = op(OpKind::clip);
    clip.name = "relu6";
    clip.inputs = {c};
    clip.clip_min = 0.f;
    clip.clip_max = 6.f;
    int y = g.add_node(clip);
    if (shared) {
      Node add = op(OpKind::add);
      add.name = "add";
      add.inputs = {y, c};
      y = g.add_node(add);
    }
    g.output = y;
    const Tensor x = input({2, 3, 7, 5});
    const Tensor want = run_reference(g, x);
    CompiledModel compiled(g);
    const Tensor got = compiled.run(x);
    EXPECT_LE(max_abs_diff(got, want), 1e-5f * max_abs(want));
    const bool fused = compiled.describe().find("+ clip relu6") != std::string::npos;
    EXPECT_EQ(fused, !shared) << compiled.describe();
    if (!shared) {
      EXPECT_EQ(*std::max_element(want.f32(), want.f32() + want.numel()), 6.f);
      EXPECT_EQ(*std::min_element(want.f32(), want.f32() + want.numel()), 0.f);
    }
  }
}

}  // namespace
}  // namespace resnet::infer
