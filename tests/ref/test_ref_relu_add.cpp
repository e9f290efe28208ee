// The naive reference kernel for ReLU and the residual add: an oracle every backend layer is held
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

}  // namespace
}  // namespace resnet
