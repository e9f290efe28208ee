// The naive reference kernel for batch normalization: an oracle every backend layer is held
// to. Hand-computable goldens (derivation in the comments), finite-difference checks of
// the backward on odd shapes, and shape validation messages.

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "ref/ref_test_util.h"

namespace resnet {
namespace {

using namespace reftest;  // NOLINT(google-build-using-namespace): the shared test helpers

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

}  // namespace
}  // namespace resnet
