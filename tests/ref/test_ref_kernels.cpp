// Tests of the naive reference kernels, the oracle every backend layer is held to:
//   * a hand-computable golden case per kernel, derivation in the comment;
//   * finite-difference checks of every backward against its forward, on odd shapes
//     (batch 3, 5 channels, 7x9 images) named by their parameters;
//   * shape validation messages.

#include <gtest/gtest.h>

#include <functional>
#include <ostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "resnet/core/error.h"
#include "resnet/ref/kernels.h"
#include "support/gradcheck.h"

namespace resnet {
namespace {

using testing::expect_close;
using testing::gradcheck;
using testing::GradcheckOptions;
using testing::GradcheckResult;
using testing::random_tensor;

Tensor values(Shape shape, std::vector<float> v) {
  return Tensor::from_vector(shape, v);
}

// Goldens are small integers or exact binary fractions, so they must match to rounding.
void expect_golden(const Tensor& actual, Shape shape, std::vector<float> expected,
                   const std::string& what) {
  expect_close(actual, Tensor::from_vector(std::move(shape), expected), 1e-6, what);
}

// `f` must throw resnet::Error whose message contains `message`.
void expect_error(const std::function<void()>& f, const std::string& message) {
  try {
    f();
    ADD_FAILURE() << "expected resnet::Error containing \"" << message << "\", got no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(message), std::string::npos)
        << "expected \"" << message << "\" in \"" << e.what() << "\"";
  }
}

void expect_gradcheck_ok(const testing::ForwardFn& forward, const testing::BackwardFn& backward,
                         const Tensor& x, const GradcheckOptions& options,
                         const std::string& what) {
  const GradcheckResult r = gradcheck(forward, backward, x, options, what);
  EXPECT_TRUE(r.ok()) << r.report();
  EXPECT_GT(r.checked, 0) << r.report();
}

// Linear maps (conv, linear, pooling, add) have no truncation error, so a large step only
// shrinks the f32 rounding noise in L(x +- h).
GradcheckOptions linear_options() {
  GradcheckOptions o;
  o.eps = 1e-2;
  return o;
}

// ---------------------------------------------------------------------------------------
// conv2d

// x = 1..9 as a 3x3 image, w = [[1, 2], [3, 4]], bias 0.5, stride 1, no padding: each output
// is x[i][j] + 2 x[i][j+1] + 3 x[i+1][j] + 4 x[i+1][j+1] + 0.5:
//   (0,0) 1 + 4 + 12 + 20 = 37   (0,1) 2 + 6 + 15 + 24 = 47
//   (1,0) 4 + 10 + 21 + 32 = 67  (1,1) 5 + 12 + 24 + 36 = 77
// With diff_dst = 1 everywhere, diff_src[i][j] sums the taps that touched (i, j) (corners
// one tap, the centre all four: 1+2+3+4 = 10), diff_weight[a][b] sums the 2x2 block of x
// starting at (a, b) (e.g. 1+2+4+5 = 12) and diff_bias counts the 4 outputs.
TEST(Conv2dRef, GoldenN1C1H3W3K2) {
  const Tensor x = values({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  const Tensor w = values({1, 1, 2, 2}, {1, 2, 3, 4});
  const Tensor b = values({1}, {0.5f});
  const ref::Conv2dParams p;
  expect_golden(ref::conv2d_forward(x, w, b, p), {1, 1, 2, 2}, {37.5f, 47.5f, 67.5f, 77.5f}, "dst");
  const Tensor dy = Tensor::full({1, 1, 2, 2}, 1.f);
  expect_golden(ref::conv2d_backward_data(dy, w, x.shape(), p), {1, 1, 3, 3},
                {1, 3, 2, 4, 10, 6, 3, 7, 4}, "diff_src");
  Tensor db;
  expect_golden(ref::conv2d_backward_weights(dy, x, w.shape(), p, &db), {1, 1, 2, 2},
                {12, 16, 24, 28}, "diff_weight");
  expect_golden(db, {1}, {4}, "diff_bias");
}

// 3x3 all-ones kernel, stride 2, padding 1 on x = 1..9: output is floor((3+2-3)/2)+1 = 2 a
// side, and each window sees one 2x2 corner block of x plus zeros:
//   (0,0) 1+2+4+5 = 12, (0,1) 2+3+5+6 = 16, (1,0) 4+5+7+8 = 24, (1,1) 5+6+8+9 = 28.
TEST(Conv2dRef, GoldenN1C1H3W3K3S2P1) {
  const Tensor x = values({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  ref::Conv2dParams p;
  p.stride_h = p.stride_w = 2;
  p.pad_h = p.pad_w = 1;
  expect_golden(ref::conv2d_forward(x, Tensor::full({1, 1, 3, 3}, 1.f), Tensor(), p), {1, 1, 2, 2},
                {12, 16, 24, 28}, "dst");
}

// groups = 2 with one channel per group: output c only sees input c, so a 1x1 conv with
// weights [10, 100] on [2, 3] gives [20, 300] (a dense conv would mix them).
TEST(Conv2dRef, GoldenGroups2) {
  ref::Conv2dParams p;
  p.groups = 2;
  expect_golden(ref::conv2d_forward(values({1, 2, 1, 1}, {2, 3}), values({2, 1, 1, 1}, {10, 100}),
                                    Tensor(), p),
                {1, 2, 1, 1}, {20, 300}, "dst");
}

// Dilation 2 spreads the taps [1, -1] two apart: out[j] = x[j] - x[j+2], width 5 - 3 + 1 = 3:
// [1-4, 2-8, 4-16] = [-3, -6, -12].
TEST(Conv2dRef, GoldenDilation2) {
  ref::Conv2dParams p;
  p.dilation_w = 2;
  expect_golden(ref::conv2d_forward(values({1, 1, 1, 5}, {1, 2, 4, 8, 16}),
                                    values({1, 1, 1, 2}, {1, -1}), Tensor(), p),
                {1, 1, 1, 3}, {-3, -6, -12}, "dst");
}

TEST(Conv2dRef, RejectsBadShapes) {
  const ref::Conv2dParams p;
  const Tensor x({2, 3, 5, 5});
  expect_error(
      [&] {
        ref::conv2d_forward(x, Tensor({4, 4, 3, 3}), Tensor(), p);
      },
      "ref::conv2d_forward: expected weight with IC/groups = 3 channels, got 4");
  expect_error(
      [&] {
        ref::conv2d_forward(x, Tensor({4, 3, 3, 3}), Tensor({5}), p);
      },
      "ref::conv2d_forward: expected bias of shape [4], got [5]");
  expect_error(
      [&] {
        ref::conv2d_forward(Tensor({3, 5, 5}), Tensor({4, 3, 3, 3}), Tensor(), p);
      },
      "expected 4-D src");
  expect_error(
      [&] {
        ref::conv2d_forward(x, Tensor({4, 3, 7, 7}), Tensor(), p);
      },
      "to fit the padded input");
  ref::Conv2dParams grouped;
  grouped.groups = 2;
  expect_error(
      [&] {
        ref::conv2d_forward(x, Tensor({4, 1, 3, 3}), Tensor(), grouped);
      },
      "expected input channels divisible by groups = 2, got 3");
  expect_error(
      [&] {
        ref::conv2d_backward_data(Tensor({2, 4, 4, 4}), Tensor({4, 3, 3, 3}), x.shape(), p);
      },
      "ref::conv2d_backward_data: expected diff_dst of shape [2, 4, 3, 3], got [2, 4, 4, 4]");
}

struct ConvCase {
  int64_t N, C, H, W, OC, K, S, P, D, G;
};

std::string conv_case_name(const ::testing::TestParamInfo<ConvCase>& info) {
  const ConvCase& c = info.param;
  // A stream, not "N" + std::to_string(...): GCC 12 warns falsely (-Wrestrict) on the latter.
  std::ostringstream s;
  s << "N" << c.N << "C" << c.C << "H" << c.H << "W" << c.W << "OC" << c.OC << "K" << c.K << "S"
    << c.S << "P" << c.P << "D" << c.D << "G" << c.G;
  return s.str();
}

// GoogleTest prints a failing parameter with this instead of its bytes.
void PrintTo(const ConvCase& c, std::ostream* os) {
  *os << conv_case_name(::testing::TestParamInfo<ConvCase>(c, 0));
}

class Conv2dRefGrad : public ::testing::TestWithParam<ConvCase> {
 protected:
  const ConvCase& c() const { return GetParam(); }
  ref::Conv2dParams params() const {
    ref::Conv2dParams p;
    p.stride_h = p.stride_w = c().S;
    p.pad_h = p.pad_w = c().P;
    p.dilation_h = p.dilation_w = c().D;
    p.groups = c().G;
    return p;
  }
  Tensor src() const { return random_tensor({c().N, c().C, c().H, c().W}, 11); }
  Tensor weight() const { return random_tensor({c().OC, c().C / c().G, c().K, c().K}, 12); }
  Tensor bias() const { return random_tensor({c().OC}, 13); }
};

TEST_P(Conv2dRefGrad, Data) {
  const Tensor w = weight(), b = bias();
  const ref::Conv2dParams p = params();
  const Tensor x = src();
  expect_gradcheck_ok(
      [&](const Tensor& xi) { return ref::conv2d_forward(xi, w, b, p); },
      [&](const Tensor& dy) { return ref::conv2d_backward_data(dy, w, x.shape(), p); }, x,
      linear_options(), "conv2d diff_src");
}

TEST_P(Conv2dRefGrad, Weights) {
  const Tensor x = src(), b = bias();
  const ref::Conv2dParams p = params();
  const Tensor w = weight();
  expect_gradcheck_ok(
      [&](const Tensor& wi) { return ref::conv2d_forward(x, wi, b, p); },
      [&](const Tensor& dy) { return ref::conv2d_backward_weights(dy, x, w.shape(), p, nullptr); },
      w, linear_options(), "conv2d diff_weight");
}

TEST_P(Conv2dRefGrad, Bias) {
  const Tensor x = src(), w = weight();
  const ref::Conv2dParams p = params();
  expect_gradcheck_ok([&](const Tensor& bi) { return ref::conv2d_forward(x, w, bi, p); },
                      [&](const Tensor& dy) {
                        Tensor db;
                        ref::conv2d_backward_weights(dy, x, w.shape(), p, &db);
                        return db;
                      },
                      bias(), linear_options(), "conv2d diff_bias");
}

// Odd sizes so that strided windows end short of the border; groups 2 needs an even C.
INSTANTIATE_TEST_SUITE_P(OddShapes, Conv2dRefGrad,
                         ::testing::Values(ConvCase{3, 5, 7, 9, 4, 3, 1, 1, 1, 1},
                                           ConvCase{3, 5, 7, 9, 4, 3, 2, 1, 1, 1},
                                           ConvCase{3, 6, 7, 9, 4, 3, 2, 1, 1, 2},
                                           ConvCase{3, 5, 7, 9, 3, 3, 1, 2, 2, 1},
                                           ConvCase{3, 5, 7, 9, 4, 1, 2, 0, 1, 1},
                                           ConvCase{2, 3, 9, 7, 4, 7, 2, 3, 1, 1}),
                         conv_case_name);

// ---------------------------------------------------------------------------------------
// batchnorm2d

// src [N=2, C=2, H=1, W=2]; channel 0 holds {0, 2, 0, 2}: mean 1, biased var 1 (the unbiased
// one would be 4/3), xhat = [-1, 1, -1, 1]; channel 1 holds {1, 1} (n=0) and {5, 5} (n=1):
// mean 3, var 4, std 2, xhat = [-1, -1, 1, 1]; the mean runs over N as well as H, W.
// With eps = 0, weight [2, 0.5], bias [1, -1]:
//   channel 0: 2 xhat + 1 = [-1, 3, -1, 3]; channel 1: 0.5 xhat - 1 = [-1.5, -1.5, -0.5, -0.5].
// With eps = 3, channel 0 divides by sqrt(1 + 3) = 2 instead: 2 * xhat / 2 + 1 = [0, 2, 0, 2].
TEST(BatchNorm2dRef, GoldenTrainN2C2H1W2) {
  const Tensor x = values({2, 2, 1, 2}, {0, 2, 1, 1, 0, 2, 5, 5});
  const Tensor w = values({2}, {2, 0.5f}), b = values({2}, {1, -1});
  const ref::BatchNormTrainResult r = ref::batchnorm2d_forward_train(x, w, b, 0.0);
  expect_golden(r.dst, {2, 2, 1, 2}, {-1, 3, -1.5f, -1.5f, -1, 3, -0.5f, -0.5f}, "dst");
  expect_golden(r.mean, {2}, {1, 3}, "mean");
  expect_golden(r.var, {2}, {1, 4}, "var");
  const ref::BatchNormTrainResult r3 = ref::batchnorm2d_forward_train(x, w, b, 3.0);
  EXPECT_FLOAT_EQ(r3.dst.f32()[0], 0.f);
  EXPECT_FLOAT_EQ(r3.dst.f32()[1], 2.f);
}

// One channel {0, 0, 2, 2}: mean 1, var 1, xhat = [-1, -1, 1, 1]; weight 3, eps 0,
// diff_dst = [1, 0, 0, 0]. sum(dy) = 1, sum(dy xhat) = -1, so
//   dx = w / std / M (M dy - sum(dy) - xhat sum(dy xhat))
//      = 3 / 4 ([4, 0, 0, 0] - 1 + [-1, -1, 1, 1]) = 3 / 4 [2, -2, 0, 0] = [1.5, -1.5, 0, 0];
// it sums to 0 and is orthogonal to xhat, as the shift and scale invariance of the
// normalization demand. diff_weight = sum(dy xhat) = -1, diff_bias = sum(dy) = 1.
TEST(BatchNorm2dRef, GoldenBackwardTrainN1C1H1W4) {
  const Tensor x = values({1, 1, 1, 4}, {0, 0, 2, 2});
  const Tensor w = values({1}, {3});
  const ref::BatchNormTrainResult f = ref::batchnorm2d_forward_train(x, w, values({1}, {0}), 0.0);
  const ref::BatchNormBackwardResult r =
      ref::batchnorm2d_backward_train(values({1, 1, 1, 4}, {1, 0, 0, 0}), x, w, f.mean, f.var, 0.0);
  expect_golden(r.diff_src, {1, 1, 1, 4}, {1.5f, -1.5f, 0, 0}, "diff_src");
  expect_golden(r.diff_weight, {1}, {-1}, "diff_weight");
  expect_golden(r.diff_bias, {1}, {1}, "diff_bias");
}

// Eval mode uses the given statistics: x = [1, 3, 5], mean 3, var 3, eps 1 -> std 2,
// xhat = [-1, 0, 1]; weight 4, bias 0.5 -> [-3.5, 0.5, 4.5]. Backward with dy = [1, 2, 3]:
// dx = dy * 4 / 2 = [2, 4, 6], diff_weight = sum(dy xhat) = -1 + 3 = 2, diff_bias = 6.
TEST(BatchNorm2dRef, GoldenEvalN1C1H1W3) {
  const Tensor x = values({1, 1, 1, 3}, {1, 3, 5});
  const Tensor w = values({1}, {4}), b = values({1}, {0.5f});
  const Tensor mean = values({1}, {3}), var = values({1}, {3});
  expect_golden(ref::batchnorm2d_forward_eval(x, w, b, mean, var, 1.0), {1, 1, 1, 3},
                {-3.5f, 0.5f, 4.5f}, "dst");
  const ref::BatchNormBackwardResult r =
      ref::batchnorm2d_backward_eval(values({1, 1, 1, 3}, {1, 2, 3}), x, w, mean, var, 1.0);
  expect_golden(r.diff_src, {1, 1, 1, 3}, {2, 4, 6}, "diff_src");
  expect_golden(r.diff_weight, {1}, {2}, "diff_weight");
  expect_golden(r.diff_bias, {1}, {6}, "diff_bias");
}

TEST(BatchNorm2dRef, RejectsBadShapes) {
  const Tensor x({3, 5, 7, 9});
  expect_error([&] { ref::batchnorm2d_forward_train(x, Tensor({4}), Tensor({5}), 1e-5); },
               "ref::batchnorm2d_forward_train: expected weight of shape [5], got [4]");
  expect_error(
      [&] {
        ref::batchnorm2d_forward_train(Tensor({3, 5}), Tensor({5}), Tensor({5}), 1e-5);
      },
      "expected 4-D src");
  expect_error([&] { ref::batchnorm2d_forward_train(x, Tensor({5}), Tensor({5}), -1.0); },
               "expected eps >= 0");
  expect_error(
      [&] {
        ref::batchnorm2d_backward_train(Tensor({3, 5, 7, 8}), x, Tensor({5}), Tensor({5}),
                                        Tensor::full({5}, 1.f), 1e-5);
      },
      "expected diff_dst of shape [3, 5, 7, 9], got [3, 5, 7, 8]");
}

// Shared inputs of the BN gradient checks: odd N, C, H, W, channels with different scales
// and offsets, weights away from 0 so the check is not trivially small.
struct BnInputs {
  Tensor x = random_tensor({3, 5, 7, 9}, 21, -2.f, 2.f);
  Tensor w = random_tensor({5}, 22, 0.5f, 1.5f);
  Tensor b = random_tensor({5}, 23);
  double eps = 1e-5;
};

// BN is smooth but not linear; eps 1e-2 balances truncation against f32 rounding.
GradcheckOptions bn_options() {
  GradcheckOptions o;
  o.eps = 1e-2;
  return o;
}

// The forward recomputes mean and var from the perturbed x each time, so the finite
// differences include the paths through the batch statistics.
TEST(BatchNorm2dRef, TrainGradN3C5H7W9) {
  const BnInputs in;
  const ref::BatchNormTrainResult f = ref::batchnorm2d_forward_train(in.x, in.w, in.b, in.eps);
  auto backward = [&](const Tensor& dy) {
    return ref::batchnorm2d_backward_train(dy, in.x, in.w, f.mean, f.var, in.eps);
  };
  expect_gradcheck_ok(
      [&](const Tensor& xi) { return ref::batchnorm2d_forward_train(xi, in.w, in.b, in.eps).dst; },
      [&](const Tensor& dy) { return backward(dy).diff_src; }, in.x, bn_options(),
      "batchnorm2d train diff_src");
  expect_gradcheck_ok(
      [&](const Tensor& wi) { return ref::batchnorm2d_forward_train(in.x, wi, in.b, in.eps).dst; },
      [&](const Tensor& dy) { return backward(dy).diff_weight; }, in.w, bn_options(),
      "batchnorm2d train diff_weight");
  expect_gradcheck_ok(
      [&](const Tensor& bi) { return ref::batchnorm2d_forward_train(in.x, in.w, bi, in.eps).dst; },
      [&](const Tensor& dy) { return backward(dy).diff_bias; }, in.b, bn_options(),
      "batchnorm2d train diff_bias");
}

// The eval-mode gradient (statistics held constant) is wrong for the training forward: the
// check must notice, which shows it perturbs through the batch statistics.
TEST(BatchNorm2dRef, TrainGradFlagsGradientIgnoringBatchStats) {
  const BnInputs in;
  const ref::BatchNormTrainResult f = ref::batchnorm2d_forward_train(in.x, in.w, in.b, in.eps);
  const GradcheckResult r = gradcheck(
      [&](const Tensor& xi) { return ref::batchnorm2d_forward_train(xi, in.w, in.b, in.eps).dst; },
      [&](const Tensor& dy) {
        return ref::batchnorm2d_backward_eval(dy, in.x, in.w, f.mean, f.var, in.eps).diff_src;
      },
      in.x, bn_options(), "batchnorm2d train diff_src (eval formula)");
  EXPECT_FALSE(r.ok()) << r.report();
}

TEST(BatchNorm2dRef, EvalGradN3C5H7W9) {
  const BnInputs in;
  const Tensor mean = random_tensor({5}, 24, -0.5f, 0.5f);
  const Tensor var = random_tensor({5}, 25, 0.5f, 2.f);
  auto forward = [&](const Tensor& x, const Tensor& w, const Tensor& b) {
    return ref::batchnorm2d_forward_eval(x, w, b, mean, var, in.eps);
  };
  auto backward = [&](const Tensor& dy) {
    return ref::batchnorm2d_backward_eval(dy, in.x, in.w, mean, var, in.eps);
  };
  expect_gradcheck_ok([&](const Tensor& xi) { return forward(xi, in.w, in.b); },
                      [&](const Tensor& dy) { return backward(dy).diff_src; }, in.x,
                      linear_options(), "batchnorm2d eval diff_src");
  expect_gradcheck_ok([&](const Tensor& wi) { return forward(in.x, wi, in.b); },
                      [&](const Tensor& dy) { return backward(dy).diff_weight; }, in.w,
                      linear_options(), "batchnorm2d eval diff_weight");
  expect_gradcheck_ok([&](const Tensor& bi) { return forward(in.x, in.w, bi); },
                      [&](const Tensor& dy) { return backward(dy).diff_bias; }, in.b,
                      linear_options(), "batchnorm2d eval diff_bias");
}

// ---------------------------------------------------------------------------------------
// relu, add

// relu keeps positives and zeroes the rest; its gradient passes where src > 0 only, so at
// exactly 0 it is 0 (PyTorch's choice of subgradient).
TEST(ReluRef, GoldenN1C1H1W5) {
  const Tensor x = values({1, 1, 1, 5}, {-2, -0.5f, 0, 0.5f, 2});
  expect_golden(ref::relu_forward(x), {1, 1, 1, 5}, {0, 0, 0, 0.5f, 2}, "dst");
  expect_golden(ref::relu_backward(values({1, 1, 1, 5}, {1, 2, 3, 4, 5}), x), {1, 1, 1, 5},
                {0, 0, 0, 4, 5}, "diff_src");
}

// Piecewise linear: a small step keeps the inputs within eps of 0 (the kinks) few.
TEST(ReluRef, GradN3C5H7W9) {
  const Tensor x = random_tensor({3, 5, 7, 9}, 31);
  expect_gradcheck_ok(
      ref::relu_forward, [&](const Tensor& dy) { return ref::relu_backward(dy, x); }, x,
      GradcheckOptions{}, "relu diff_src");
}

// Inputs exactly at the kink: ReLU's subgradient 0 lies between the one-sided differences
// (0 and w), so the check passes and counts them as kinks.
TEST(ReluRef, GradAtExactZerosN3C5H7W9) {
  Tensor x = random_tensor({3, 5, 7, 9}, 32);
  for (int64_t i = 0; i < x.numel(); i += 37) x.f32()[i] = 0.f;
  const GradcheckResult r = gradcheck(
      ref::relu_forward, [&](const Tensor& dy) { return ref::relu_backward(dy, x); }, x,
      GradcheckOptions{}, "relu diff_src at zeros");
  EXPECT_TRUE(r.ok()) << r.report();
  EXPECT_GE(r.kinks, 20) << r.report();
}

TEST(AddRef, GoldenAndGradN3C5H7W9) {
  expect_golden(ref::add(values({3}, {1, 2, 3}), values({3}, {10, 20, 30})), {3}, {11, 22, 33},
                "dst");
  const Tensor a = random_tensor({3, 5, 7, 9}, 41), b = random_tensor({3, 5, 7, 9}, 42);
  // d(a + b)/da and d(a + b)/db are both the identity.
  auto identity = [](const Tensor& dy) { return dy; };
  expect_gradcheck_ok([&](const Tensor& ai) { return ref::add(ai, b); }, identity, a,
                      linear_options(), "add diff_a");
  expect_gradcheck_ok([&](const Tensor& bi) { return ref::add(a, bi); }, identity, b,
                      linear_options(), "add diff_b");
  expect_error(
      [&] {
        ref::add(a, Tensor({3, 5, 7, 8}));
      },
      "ref::add: expected b of shape [3, 5, 7, 9], got [3, 5, 7, 8]");
  expect_error([&] { ref::relu_backward(Tensor({2}), a); }, "ref::relu_backward: expected");
}

// ---------------------------------------------------------------------------------------
// maxpool2d, global avgpool

// 1..16 as a 4x4 image, 2x2 windows, stride 2: the bottom-right of each block wins:
// [6, 8, 14, 16].
TEST(MaxPool2dRef, GoldenN1C1H4W4K2S2) {
  std::vector<float> v(16);
  for (int i = 0; i < 16; ++i) v[i] = float(i + 1);
  expect_golden(ref::maxpool2d_forward(values({1, 1, 4, 4}, v), 2, 2, 0), {1, 1, 2, 2},
                {6, 8, 14, 16}, "dst");
}

// Padding is -inf, not 0: on x = -(1..9), 3x3 windows, stride 2, pad 1 cover the four 2x2
// corner blocks, whose maxima are -1, -2, -4, -5 (zero padding would give 0 everywhere).
TEST(MaxPool2dRef, GoldenNegativeN1C1H3W3K3S2P1) {
  const Tensor x = values({1, 1, 3, 3}, {-1, -2, -3, -4, -5, -6, -7, -8, -9});
  expect_golden(ref::maxpool2d_forward(x, 3, 2, 1), {1, 1, 2, 2}, {-1, -2, -4, -5}, "dst");
}

// The gradient goes to the first maximum in scan order (a 2x2 tie routes all of dy = 5 to
// (0, 0)), and overlapping windows accumulate: on [[1, 3, 2], [0, 0, 0]] with 2x2 windows
// and stride 1 both windows pick the 3, which receives 1 + 2.
TEST(MaxPool2dRef, GoldenBackwardTieAndOverlap) {
  expect_golden(
      ref::maxpool2d_backward(values({1, 1, 1, 1}, {5}), Tensor::full({1, 1, 2, 2}, 1.f), 2, 1, 0),
      {1, 1, 2, 2}, {5, 0, 0, 0}, "diff_src (tie)");
  const Tensor x = values({1, 1, 2, 3}, {1, 3, 2, 0, 0, 0});
  expect_golden(ref::maxpool2d_forward(x, 2, 1, 0), {1, 1, 1, 2}, {3, 3}, "dst (overlap)");
  expect_golden(ref::maxpool2d_backward(values({1, 1, 1, 2}, {1, 2}), x, 2, 1, 0), {1, 1, 2, 3},
                {0, 3, 0, 0, 0, 0}, "diff_src (overlap)");
}

// Output size floor((H + 2p - k) / s) + 1: 7x9 with k3 s2 p1 -> 4x5; 8x8 with k3 s2 p0 ->
// floor(5 / 2) + 1 = 3 (the last column is dropped, ceil_mode = false).
TEST(MaxPool2dRef, OutputSizeFloors) {
  EXPECT_EQ(ref::maxpool2d_forward(Tensor({1, 1, 7, 9}), 3, 2, 1).shape(), (Shape{1, 1, 4, 5}));
  EXPECT_EQ(ref::maxpool2d_forward(Tensor({1, 1, 8, 8}), 3, 2, 0).shape(), (Shape{1, 1, 3, 3}));
  expect_error(
      [] {
        ref::maxpool2d_forward(Tensor({1, 1, 7, 9}), 3, 2, 2);
      },
      "ref::maxpool2d_forward: expected 0 <= pad <= kernel / 2 = 1, got 2");
  expect_error(
      [] {
        ref::maxpool2d_forward(Tensor({1, 1, 2, 9}), 3, 1, 0);
      },
      "expected the padded input to hold a 3x3 window");
}

struct PoolCase {
  int64_t K, S, P;
};

std::string pool_case_name(const ::testing::TestParamInfo<PoolCase>& info) {
  std::ostringstream s;
  s << "K" << info.param.K << "S" << info.param.S << "P" << info.param.P;
  return s.str();
}

void PrintTo(const PoolCase& c, std::ostream* os) {
  *os << pool_case_name(::testing::TestParamInfo<PoolCase>(c, 0));
}

class MaxPool2dRefGrad : public ::testing::TestWithParam<PoolCase> {};

TEST_P(MaxPool2dRefGrad, N3C5H7W9) {
  const int64_t k = GetParam().K, s = GetParam().S, p = GetParam().P;
  const Tensor x = random_tensor({3, 5, 7, 9}, 51);
  expect_gradcheck_ok([&](const Tensor& xi) { return ref::maxpool2d_forward(xi, k, s, p); },
                      [&](const Tensor& dy) { return ref::maxpool2d_backward(dy, x, k, s, p); }, x,
                      GradcheckOptions{}, "maxpool2d diff_src");
}

INSTANTIATE_TEST_SUITE_P(Windows, MaxPool2dRefGrad,
                         ::testing::Values(PoolCase{3, 2, 1}, PoolCase{2, 2, 0}, PoolCase{3, 1, 1},
                                           PoolCase{2, 1, 1}),
                         pool_case_name);

// Channel 0 = [1, 2, 3, 4] averages to 2.5, channel 1 = [10, 20, 30, 40] to 25; backward
// spreads dy / (H W): [4, 8] -> 1 and 2 per element.
TEST(GlobalAvgPoolRef, GoldenN1C2H1W4) {
  const Tensor x = values({1, 2, 1, 4}, {1, 2, 3, 4, 10, 20, 30, 40});
  expect_golden(ref::global_avgpool_forward(x), {1, 2, 1, 1}, {2.5f, 25}, "dst");
  expect_golden(ref::global_avgpool_backward(values({1, 2, 1, 1}, {4, 8}), x.shape()), {1, 2, 1, 4},
                {1, 1, 1, 1, 2, 2, 2, 2}, "diff_src");
  expect_error(
      [&] {
        ref::global_avgpool_backward(Tensor({1, 2}), x.shape());
      },
      "ref::global_avgpool_backward: expected diff_dst of shape [1, 2, 1, 1], got [1, 2]");
}

// The gradients are dy / 63, about 0.01: the default atol (1e-3) would hide a 10% error, so
// it is tightened to what the f32 noise allows here (one output moves per element).
TEST(GlobalAvgPoolRef, GradN3C5H7W9) {
  const Tensor x = random_tensor({3, 5, 7, 9}, 61);
  GradcheckOptions options = linear_options();
  options.atol = 1e-5;
  expect_gradcheck_ok(
      ref::global_avgpool_forward,
      [&](const Tensor& dy) { return ref::global_avgpool_backward(dy, x.shape()); }, x, options,
      "global_avgpool diff_src");
}

// ---------------------------------------------------------------------------------------
// linear

// src [[1, 2, 3]], weight [[1, 0, -1], [2, 2, 2]], bias [0.5, -1]:
//   dst = [1 - 3 + 0.5, 2 + 4 + 6 - 1] = [-1.5, 11].
// With dy = [[1, 1]]: diff_src = dy W = [3, 2, 1], diff_weight = dy^T src = both rows
// [1, 2, 3], diff_bias = [1, 1].
TEST(LinearRef, GoldenN1In3Out2) {
  const Tensor x = values({1, 3}, {1, 2, 3});
  const Tensor w = values({2, 3}, {1, 0, -1, 2, 2, 2});
  expect_golden(ref::linear_forward(x, w, values({2}, {0.5f, -1})), {1, 2}, {-1.5f, 11}, "dst");
  const Tensor dy = values({1, 2}, {1, 1});
  expect_golden(ref::linear_backward_data(dy, w), {1, 3}, {3, 2, 1}, "diff_src");
  Tensor db;
  expect_golden(ref::linear_backward_weights(dy, x, &db), {2, 3}, {1, 2, 3, 1, 2, 3},
                "diff_weight");
  expect_golden(db, {2}, {1, 1}, "diff_bias");
  expect_error(
      [&] {
        ref::linear_forward(x, Tensor({2, 4}), Tensor());
      },
      "ref::linear_forward: expected weight with IN = 3 columns, got [2, 4]");
}

TEST(LinearRef, GradN3In7Out5) {
  const Tensor x = random_tensor({3, 7}, 71), w = random_tensor({5, 7}, 72);
  const Tensor b = random_tensor({5}, 73);
  expect_gradcheck_ok([&](const Tensor& xi) { return ref::linear_forward(xi, w, b); },
                      [&](const Tensor& dy) { return ref::linear_backward_data(dy, w); }, x,
                      linear_options(), "linear diff_src");
  expect_gradcheck_ok(
      [&](const Tensor& wi) { return ref::linear_forward(x, wi, b); },
      [&](const Tensor& dy) { return ref::linear_backward_weights(dy, x, nullptr); }, w,
      linear_options(), "linear diff_weight");
  expect_gradcheck_ok([&](const Tensor& bi) { return ref::linear_forward(x, w, bi); },
                      [&](const Tensor& dy) {
                        Tensor db;
                        ref::linear_backward_weights(dy, x, &db);
                        return db;
                      },
                      b, linear_options(), "linear diff_bias");
}

}  // namespace
}  // namespace resnet
