// Tests of the test helpers in support/gradcheck.h: a checker that cannot fail proves
// nothing, so each failure mode is provoked here on purpose.

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "resnet/ref/kernels.h"
#include "support/gradcheck.h"

namespace resnet {
namespace {

using testing::check_gradient;
using testing::expect_close;
using testing::gradcheck;
using testing::GradcheckOptions;
using testing::GradcheckResult;
using testing::random_tensor;

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(RandomTensor, IsDeterministicAndInRange) {
  const Tensor a = random_tensor({3, 5, 7, 9}, 7, -2.f, 3.f);
  const Tensor b = random_tensor({3, 5, 7, 9}, 7, -2.f, 3.f);
  EXPECT_EQ(max_abs_diff(a, b), 0.f);
  EXPECT_GT(max_abs_diff(a, random_tensor({3, 5, 7, 9}, 8, -2.f, 3.f)), 0.f);
  for (float v : a.values()) {
    EXPECT_GE(v, -2.f);
    EXPECT_LT(v, 3.f);
  }
}

TEST(ExpectClose, PassesWithinFractionOfMax) {
  const Tensor e = Tensor::from_vector({2, 2}, {100, -1, 0, 50});
  // 0.05 off on an element of 0 is fine: the bound is 1e-3 * max|e| = 0.1.
  const Tensor a = Tensor::from_vector({2, 2}, {100.05f, -1, 0.05f, 50});
  expect_close(a, e, 1e-3, "within");
  // All-zero expected: only the absolute floor remains.
  expect_close(Tensor::full({3}, 1e-7f), Tensor({3}), 1e-3, "zeros");
}

TEST(ExpectClose, FlagsDifferenceOverBoundWithIndex) {
  const Tensor e = Tensor::from_vector({1, 2, 1, 2}, {1, 2, 3, 4});
  const Tensor a = Tensor::from_vector({1, 2, 1, 2}, {1, 2, 3.1f, 4});
  EXPECT_NONFATAL_FAILURE(expect_close(a, e, 1e-3, "dst"), "at index 2 [0, 1, 0, 0]");
  EXPECT_NONFATAL_FAILURE(expect_close(a, e, 1e-3, "dst"), "dst: max diff");
}

TEST(ExpectClose, FlagsShapeMismatchAndNaN) {
  EXPECT_NONFATAL_FAILURE(expect_close(Tensor({2, 3}), Tensor({3, 2}), 1e-3, "w"),
                          "w: expected shape [3, 2], got [2, 3]");
  const Tensor nan = Tensor::full({2}, std::numeric_limits<float>::quiet_NaN());
  EXPECT_NONFATAL_FAILURE(expect_close(nan, Tensor({2}), 1e-3, "nan"), "max diff inf");
}

// Linear layer with one analytic element made wrong on purpose: exactly that element fails,
// and the report names it with expected and computed values.
TEST(Gradcheck, FlagsOneWrongElement) {
  const Tensor x = random_tensor({3, 7}, 1), w = random_tensor({5, 7}, 2);
  auto forward = [&](const Tensor& xi) { return ref::linear_forward(xi, w, Tensor()); };
  const Tensor y = forward(x);
  const Tensor loss_weights = random_tensor(y.shape(), 3);
  Tensor analytic = ref::linear_backward_data(loss_weights, w);
  GradcheckOptions options;
  options.eps = 1e-2;
  EXPECT_TRUE(check_gradient(forward, x, loss_weights, analytic, options).ok());

  analytic.f32()[9] += 0.05f;
  const GradcheckResult r = check_gradient(forward, x, loss_weights, analytic, options, "linear");
  EXPECT_FALSE(r.ok());
  ASSERT_EQ(r.mismatches.size(), 1u) << r.report();
  EXPECT_EQ(r.mismatches[0].index, 9);
  EXPECT_NEAR(r.mismatches[0].computed - r.mismatches[0].expected, 0.05, 1e-3);
  EXPECT_TRUE(contains(r.report(), "index 9 [1, 2]")) << r.report();
  EXPECT_TRUE(contains(r.report(), "expected (finite difference)")) << r.report();
}

// A ReLU backward that forgets its mask is wrong wherever x < 0.
TEST(Gradcheck, FlagsReluBackwardWithoutMask) {
  const Tensor x = random_tensor({3, 5, 7, 9}, 4);
  const GradcheckResult r = gradcheck(
      ref::relu_forward, [](const Tensor& dy) { return dy; }, x, {}, "relu");
  EXPECT_FALSE(r.ok());
  EXPECT_GT(r.mismatches.size(), 100u) << r.report();
}

// A gradient that is slightly off everywhere (by 5%, over rtol = 1%) is caught too.
TEST(Gradcheck, FlagsScaledGradient) {
  const Tensor x = random_tensor({3, 7}, 5), w = random_tensor({5, 7}, 6);
  GradcheckOptions options;
  options.eps = 1e-2;
  const GradcheckResult r =
      gradcheck([&](const Tensor& xi) { return ref::linear_forward(xi, w, Tensor()); },
                [&](const Tensor& dy) {
                  Tensor dx = ref::linear_backward_data(dy, w);
                  for (float& v : dx.values()) v *= 1.05f;
                  return dx;
                },
                x, options, "linear");
  EXPECT_FALSE(r.ok());
  EXPECT_GT(r.mismatches.size(), 10u) << r.report();
}

// At an exact kink either one-sided derivative is accepted (ReLU at 0: 0 or w), anything
// outside them is not.
TEST(Gradcheck, KinkAllowanceBoundsTheGradient) {
  Tensor x = random_tensor({2, 3, 5, 5}, 6);
  x.f32()[10] = 0.f;
  const Tensor loss_weights = Tensor::full({2, 3, 5, 5}, 1.f);
  Tensor analytic = ref::relu_backward(loss_weights, x);
  const auto forward = ref::relu_forward;
  GradcheckResult r = check_gradient(forward, x, loss_weights, analytic);
  EXPECT_TRUE(r.ok()) << r.report();
  EXPECT_EQ(r.kinks, 1) << r.report();

  analytic.f32()[10] = 1.f;  // the right-hand derivative: also a valid choice
  EXPECT_TRUE(check_gradient(forward, x, loss_weights, analytic).ok());

  analytic.f32()[10] = 3.f;
  r = check_gradient(forward, x, loss_weights, analytic, {}, "relu");
  ASSERT_EQ(r.mismatches.size(), 1u) << r.report();
  EXPECT_TRUE(r.mismatches[0].at_kink);
  EXPECT_TRUE(contains(r.report(), "index 10 [0, 0, 2, 0]: at a kink")) << r.report();
}

// If most elements sit at kinks the check says little; it reports that rather than pass.
TEST(Gradcheck, TooManyKinksIsAFailure) {
  const Tensor x({2, 3, 4, 4});  // all zeros: every element is at ReLU's kink
  const GradcheckResult r = gradcheck(
      ref::relu_forward, [&](const Tensor& dy) { return ref::relu_backward(dy, x); }, x);
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.problem, "sit at kinks")) << r.report();
}

TEST(Gradcheck, MaxChecksLimitsTheElementsChecked) {
  const Tensor x = random_tensor({3, 5, 7, 9}, 8);
  GradcheckOptions options;
  options.max_checks = 17;
  const GradcheckResult r = gradcheck(
      ref::relu_forward, [&](const Tensor& dy) { return ref::relu_backward(dy, x); }, x, options);
  EXPECT_TRUE(r.ok()) << r.report();
  EXPECT_EQ(r.checked, 17);
}

TEST(Gradcheck, ReportsWrongShapesAndNaN) {
  const Tensor x = random_tensor({2, 3}, 9);
  const GradcheckResult shape = gradcheck(
      ref::relu_forward,
      [](const Tensor&) {
        return Tensor({3, 2});
      },
      x, {}, "relu");
  EXPECT_FALSE(shape.ok());
  EXPECT_TRUE(contains(shape.problem, "expected an analytic gradient of shape [2, 3], got [3, 2]"))
      << shape.report();

  const GradcheckResult nan = gradcheck(
      ref::relu_forward,
      [](const Tensor& dy) {
        Tensor dx = dy.clone();
        dx.f32()[0] = std::numeric_limits<float>::quiet_NaN();
        return dx;
      },
      Tensor::full({2, 3}, 0.5f));
  EXPECT_FALSE(nan.ok());
  EXPECT_EQ(nan.mismatches.size(), 1u) << nan.report();
}

}  // namespace
}  // namespace resnet
