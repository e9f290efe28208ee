// The naive reference kernel for max and global average pooling: an oracle every backend layer is
// held to. Hand-computable goldens (derivation in the comments), finite-difference checks of the
// backward on odd shapes, and shape validation messages.

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "ref/ref_test_util.h"

namespace resnet {
namespace {

using namespace reftest;  // NOLINT(google-build-using-namespace): the shared test helpers

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

}  // namespace
}  // namespace resnet
