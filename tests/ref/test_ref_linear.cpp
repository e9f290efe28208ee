// The naive reference kernel for the linear layer: an oracle every backend layer is held
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
