// The naive reference kernel for the convolution: an oracle every backend layer is held
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

}  // namespace
}  // namespace resnet
