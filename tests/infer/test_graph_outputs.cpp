// Graphs with several outputs, and the ops that write them: MaxPool's Indices, Dropout's
// mask, training BatchNormalization's running statistics; and the pools of [N, C, D, H, W]
// and dilated max pooling. Each is checked against values worked out by hand or an
// independent loop here, through both engines (the reference interpreter and the compiled
// model), on odd shapes; malformed graphs are refused in one line naming the node.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "resnet/core/error.h"
#include "resnet/infer/compiled_model.h"
#include "resnet/infer/op_table.h"
#include "resnet/infer/reference_run.h"
#include "support/deterministic_weights.h"

namespace resnet::infer {
namespace {

// input -> `n` as a whole graph; every extra output of the node is a graph output too.
Graph one_op(Node n, int extra_outputs = 0) {
  Graph g;
  g.add_value("input");
  n.name = "op";
  n.inputs = {0};
  for (int i = 0; i < extra_outputs; ++i)
    n.extra_outputs.push_back(g.add_value("op.extra" + std::to_string(i)));
  g.extra_outputs = n.extra_outputs;
  g.output = g.add_node(std::move(n));
  return g;
}

Node pool(OpKind op, std::vector<int64_t> kernel, std::vector<int64_t> stride) {
  Node n;
  n.op = op;
  Window& w = n.window;
  if (kernel.size() == 3) {
    w.kernel_d = kernel[0], w.stride_d = stride[0];
    kernel.erase(kernel.begin()), stride.erase(stride.begin());
  }
  w.kernel_h = kernel[0], w.kernel_w = kernel[1];
  w.stride_h = stride[0], w.stride_w = stride[1];
  return n;
}

Tensor from(Shape shape, const std::vector<float>& values) {
  return Tensor::from_vector(std::move(shape), values);
}

// Both engines' outputs, after checking that they agree: floats within 1e-5 relative,
// integers and bools exactly.
std::vector<Tensor> run_both(const Graph& g, const Tensor& x) {
  const std::vector<Tensor> want = run_reference_outputs(g, x);
  CompiledModel compiled(g);
  const std::vector<Tensor> got = compiled.run_outputs(x);
  EXPECT_EQ(got.size(), want.size());
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    SCOPED_TRACE("output " + std::to_string(i));
    EXPECT_EQ(got[i].shape(), want[i].shape());
    EXPECT_EQ(got[i].dtype(), want[i].dtype());
    if (got[i].shape() != want[i].shape() || got[i].dtype() != want[i].dtype()) continue;
    if (want[i].dtype() == DType::f32) {
      EXPECT_LE(max_abs_diff(got[i], want[i]), 1e-5f * std::max(1.0f, max_abs(want[i])));
    } else {
      EXPECT_EQ(std::memcmp(got[i].raw(), want[i].raw(), want[i].nbytes()), 0);
    }
  }
  EXPECT_EQ(compiled.run(x).shape(), want[0].shape());  // run() is the first output
  return want;
}

std::vector<int64_t> ints(const Tensor& t) {
  return {t.i64(), t.i64() + t.numel()};
}

std::vector<float> floats(const Tensor& t) {
  return {t.f32(), t.f32() + t.numel()};
}

TEST(GraphOutputs, MaxPoolIndicesByHand) {
  // [1, 2, 3, 4]: plane 0 holds 0..11 with the maxima placed by hand, plane 1 its negation.
  const std::vector<float> plane = {1, 9, 2,  3,  //
                                    4, 5, 8,  7,  //
                                    6, 0, 11, 10};
  std::vector<float> values = plane;
  for (float v : plane) values.push_back(-v);
  const Tensor x = from({1, 2, 3, 4}, values);
  Node n = pool(OpKind::max_pool, {2, 2}, {1, 2});  // 2 rows x 2 windows per plane
  const std::vector<Tensor> row = run_both(one_op(n, 1), x);
  ASSERT_EQ(row.size(), 2u);
  EXPECT_EQ(floats(row[0]), (std::vector<float>{9, 8, 6, 11, -1, -2, 0, -7}));
  EXPECT_EQ(row[1].dtype(), DType::i64);
  // Row-major flat positions in x: plane 1 starts at 12.
  EXPECT_EQ(ints(row[1]), (std::vector<int64_t>{1, 6, 8, 10, 12, 14, 21, 19}));
  n.indices_column_major = true;  // storage_order 1: position h + w * H in each plane
  const std::vector<Tensor> col = run_both(one_op(n, 1), x);
  EXPECT_EQ(ints(col[1]), (std::vector<int64_t>{3, 7, 2, 8, 12, 18, 17, 22}));
}

TEST(GraphOutputs, MaxPoolIndicesWithPaddingAndDilation) {
  // ONNX's own example: 5x5 of 1..25, kernel 5, pads 2: each output is its window's
  // bottom-right-most element.
  std::vector<float> v(25);
  for (int i = 0; i < 25; ++i) v[i] = static_cast<float>(i + 1);
  Node n = pool(OpKind::max_pool, {5, 5}, {1, 1});
  n.window.pad_t = n.window.pad_l = n.window.pad_b = n.window.pad_r = 2;
  const std::vector<Tensor> y = run_both(one_op(n, 1), from({1, 1, 5, 5}, v));
  const std::vector<int64_t> idx = ints(y[1]);
  EXPECT_EQ(std::vector<int64_t>(idx.begin(), idx.begin() + 5),
            (std::vector<int64_t>{12, 13, 14, 14, 14}));
  EXPECT_EQ(idx.back(), 24);
  // Dilation 2 over 4x4 of 1..16: windows {x[i][j], x[i][j+2], x[i+2][j], x[i+2][j+2]}.
  Node d = pool(OpKind::max_pool, {2, 2}, {1, 1});
  d.window.dilation_h = d.window.dilation_w = 2;
  const std::vector<Tensor> yd = run_both(
      one_op(d, 1), from({1, 1, 4, 4}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}));
  EXPECT_EQ(floats(yd[0]), (std::vector<float>{11, 12, 15, 16}));
  EXPECT_EQ(ints(yd[1]), (std::vector<int64_t>{10, 11, 14, 15}));
}

// An independent 3-D pool: every output visits its whole window, and `max` or the mean of
// the elements inside the input.
Tensor naive_pool_3d(const Tensor& x, const Window& w, bool max, const Shape& y_shape) {
  Tensor y(y_shape);
  const int64_t D = x.dim(2), H = x.dim(3), W = x.dim(4);
  int64_t o = 0;
  for (int64_t nc = 0; nc < x.dim(0) * x.dim(1); ++nc)
    for (int64_t od = 0; od < y_shape[2]; ++od)
      for (int64_t oh = 0; oh < y_shape[3]; ++oh)
        for (int64_t ow = 0; ow < y_shape[4]; ++ow, ++o) {
          double sum = 0, count = 0, best = -std::numeric_limits<double>::infinity();
          for (int64_t a = 0; a < w.kernel_d; ++a)
            for (int64_t b = 0; b < w.kernel_h; ++b)
              for (int64_t c = 0; c < w.kernel_w; ++c) {
                const int64_t d = od * w.stride_d - w.pad_front + a * w.dilation_d;
                const int64_t h = oh * w.stride_h - w.pad_t + b * w.dilation_h;
                const int64_t k = ow * w.stride_w - w.pad_l + c * w.dilation_w;
                if (d < 0 || d >= D || h < 0 || h >= H || k < 0 || k >= W) continue;
                const double v = x.f32()[((nc * D + d) * H + h) * W + k];
                best = std::max(best, v);
                sum += v;
                ++count;
              }
          y.f32()[o] = static_cast<float>(max ? best : sum / count);
        }
  return y;
}

TEST(GraphOutputs, ThreeDimensionalPoolsOnOddShapes) {
  const Tensor x = testing::deterministic_tensor(5, "x", {2, 3, 5, 4, 7});
  for (OpKind op : {OpKind::max_pool, OpKind::avg_pool}) {
    SCOPED_TRACE(op_name(op));
    Node n = pool(op, {2, 3, 2}, {2, 1, 3});
    n.window.pad_front = 1, n.window.pad_back = 0;
    n.window.pad_t = n.window.pad_b = 1;
    n.window.pad_l = 0, n.window.pad_r = 1;
    if (op == OpKind::max_pool) n.window.dilation_w = 2;
    Graph g = one_op(n);
    g.infer_shapes(x.shape());
    const Shape y_shape = g.values[g.output].shape;
    // D: (5 + 1 - 2) / 2 + 1 = 3; H: (4 + 2 - 3) + 1 = 4; W: (7 + 1 - span) / 3 + 1.
    EXPECT_EQ(y_shape, (Shape{2, 3, 3, 4, op == OpKind::max_pool ? 2 : 3}));
    const Tensor want = naive_pool_3d(x, n.window, op == OpKind::max_pool, y_shape);
    const std::vector<Tensor> got = run_both(g, x);
    EXPECT_LE(max_abs_diff(got[0], want), 1e-6f);
  }
  // Indices of a 3-D max pool: the position of the maximum in x.
  const std::vector<Tensor> both =
      run_both(one_op(pool(OpKind::max_pool, {2, 2, 2}, {1, 2, 2}), 1), x);
  for (int64_t i = 0; i < both[0].numel(); ++i)
    ASSERT_EQ(x.f32()[both[1].i64()[i]], both[0].f32()[i]) << i;
}

TEST(GraphOutputs, DropoutMaskIsAllTrue) {
  Node n;
  n.op = OpKind::dropout;
  const Tensor x = testing::deterministic_tensor(2, "x", {3, 1, 5});
  const std::vector<Tensor> y = run_both(one_op(n, 1), x);
  EXPECT_EQ(floats(y[0]), floats(x));
  ASSERT_EQ(y[1].dtype(), DType::u8);
  ASSERT_EQ(y[1].shape(), x.shape());
  const auto* mask = static_cast<const uint8_t*>(y[1].raw());
  EXPECT_TRUE(std::all_of(mask, mask + 15, [](uint8_t m) { return m == 1; }));
}

TEST(GraphOutputs, TrainingBatchNormByHand) {
  // [2, 2, 1, 2]: channel 0 holds {1, 3, 5, 7} (mean 4, biased variance 5), channel 1
  // {2, 2, 2, 2} (mean 2, variance 0).
  const Tensor x = from({2, 2, 1, 2}, {1, 3, 2, 2, 5, 7, 2, 2});
  Node n;
  n.op = OpKind::batch_norm;
  n.training = true;
  n.eps = 1.0;
  n.momentum = 0.75;
  n.params = {{"gamma", from({2}, {2, 3})},
              {"beta", from({2}, {10, -1})},
              {"mean", from({2}, {8, 4})},
              {"var", from({2}, {1, 9})}};
  const std::vector<Tensor> y = run_both(one_op(n, 2), x);
  // Channel 0: (v - 4) / sqrt(5 + 1) * 2 + 10; channel 1: 0 * 3 - 1.
  const float k = 2.0f / std::sqrt(6.0f);
  const std::vector<float> want = {10 - 3 * k, 10 - k, -1, -1, 10 + k, 10 + 3 * k, -1, -1};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(y[0].f32()[i], want[i], 1e-5) << i;
  // Running: input * 0.75 + batch * 0.25.
  EXPECT_EQ(floats(y[1]), (std::vector<float>{8 * 0.75f + 4 * 0.25f, 4 * 0.75f + 2 * 0.25f}));
  EXPECT_EQ(floats(y[2]), (std::vector<float>{1 * 0.75f + 5 * 0.25f, 9 * 0.75f}));
  // Without its statistics as outputs it still normalises with the batch's.
  const std::vector<Tensor> only_y = run_both(one_op(n), x);
  ASSERT_EQ(only_y.size(), 1u);
  EXPECT_EQ(floats(only_y[0]), floats(y[0]));
}

TEST(GraphOutputs, TrainingBatchNormOnAnOddRank) {
  // [3, 2, 5] (no spatial pair): each channel normalised to mean 0, variance 1 - eps-ish.
  const Tensor x = testing::deterministic_tensor(4, "x", {3, 2, 5});
  Node n;
  n.op = OpKind::batch_norm;
  n.training = true;
  n.eps = 0;
  n.params = {{"g", Tensor::full({2}, 1.f)},
              {"b", Tensor::full({2}, 0.f)},
              {"m", Tensor::full({2}, 0.f)},
              {"v", Tensor::full({2}, 1.f)}};
  const Tensor y = run_both(one_op(n, 2), x)[0];
  for (int64_t c = 0; c < 2; ++c) {
    double sum = 0, sq = 0;
    for (int64_t b = 0; b < 3; ++b)
      for (int64_t i = 0; i < 5; ++i) {
        const double v = y.f32()[(b * 2 + c) * 5 + i];
        sum += v, sq += v * v;
      }
    EXPECT_NEAR(sum / 15, 0, 1e-5);
    EXPECT_NEAR(sq / 15, 1, 1e-4);
  }
}

TEST(GraphOutputs, MalformedGraphsAreRefusedInOneLine) {
  auto message = [](const Graph& g) {
    try {
      g.validate();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  Node relu;
  relu.op = OpKind::relu;
  const std::string too_many = message(one_op(relu, 1));
  EXPECT_NE(too_many.find("node 'op' (Relu): expected at most 1 output(s), found 2"),
            std::string::npos)
      << too_many;
  Node bn;
  bn.op = OpKind::batch_norm;  // outside training: no statistics to write
  for (const char* p : {"g", "b", "m", "v"}) bn.params.push_back({p, Tensor::full({2}, 1.f)});
  EXPECT_NE(message(one_op(bn, 2)).find("expected at most 1 output(s), found 3"),
            std::string::npos);
  Graph unproduced = one_op(relu);
  unproduced.extra_outputs = {unproduced.add_value("nothing")};
  EXPECT_NE(message(unproduced).find("graph: output 1 is not produced by any node"),
            std::string::npos);
  // A 3-D window on a 4-D input, a 2-D one on a 3-D input, and a training batch norm of
  // an empty batch.
  Graph deep = one_op(pool(OpKind::max_pool, {2, 2, 2}, {1, 1, 1}));
  EXPECT_THROW(
      {
        try {
          deep.infer_shapes({1, 1, 4, 4});
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("a 3-D window expects a 5-D input"),
                    std::string::npos)
              << e.what();
          throw;
        }
      },
      Error);
  EXPECT_THROW(one_op(pool(OpKind::avg_pool, {2, 2}, {1, 1})).infer_shapes({1, 4, 4}), Error);
  bn.training = true;
  EXPECT_THROW(run_reference(one_op(bn), Tensor({0, 2, 3})), Error);
  EXPECT_THROW(CompiledModel(one_op(bn)).run(Tensor({0, 2, 3})), Error);
}

}  // namespace
}  // namespace resnet::infer
