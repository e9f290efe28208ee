// backend::subsample_pad_channels, the option-A shortcut kernel: odd sizes and strides
// against PyTorch's x[:, :, ::sh, ::sw] followed by a zero channel pad (written out
// here element by element), its backward as the exact adjoint, and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "resnet/backend/eltwise.h"
#include "resnet/backend/shortcut_pad.h"
#include "resnet/core/error.h"
#include "support/deterministic_weights.h"

namespace resnet::backend {
namespace rt = resnet::testing;
namespace {

struct PadCase {
  Shape x;
  int64_t sh, sw, before, after;
};

class ShortcutPad : public ::testing::TestWithParam<PadCase> {};

TEST_P(ShortcutPad, MatchesStridedSliceAndChannelPad) {
  const PadCase c = GetParam();
  const Tensor x = rt::deterministic_tensor(1, "x", c.x);
  const Tensor y = subsample_pad_channels(x, c.sh, c.sw, c.before, c.after);
  const int64_t oh = (c.x[2] + c.sh - 1) / c.sh, ow = (c.x[3] + c.sw - 1) / c.sw;
  ASSERT_EQ(y.shape(), (Shape{c.x[0], c.x[1] + c.before + c.after, oh, ow}));
  const int64_t C = c.x[1], H = c.x[2], W = c.x[3], OC = y.dim(1);
  for (int64_t n = 0; n < y.dim(0); ++n)
    for (int64_t ch = 0; ch < y.dim(1); ++ch)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          const int64_t src_c = ch - c.before;
          const float want = src_c >= 0 && src_c < c.x[1]
                                 ? x.f32()[((n * C + src_c) * H + i * c.sh) * W + j * c.sw]
                                 : 0.f;
          ASSERT_EQ(y.f32()[((n * OC + ch) * oh + i) * ow + j], want)
              << n << "," << ch << "," << i << "," << j;
        }
}

TEST_P(ShortcutPad, BackwardIsTheAdjoint) {
  // <f(x), dy> == <x, f'(dy)> for a linear f, exactly (each term appears once).
  const PadCase c = GetParam();
  const Tensor x = rt::deterministic_tensor(2, "x", c.x);
  const Tensor y = subsample_pad_channels(x, c.sh, c.sw, c.before, c.after);
  const Tensor dy = rt::deterministic_tensor(3, "dy", y.shape());
  const Tensor dx = subsample_pad_channels_backward(dy, c.x, c.sh, c.sw, c.before);
  ASSERT_EQ(dx.shape(), c.x);
  double lhs = 0, rhs = 0;
  for (int64_t i = 0; i < y.numel(); ++i) lhs += double(y.f32()[i]) * dy.f32()[i];
  for (int64_t i = 0; i < x.numel(); ++i) rhs += double(x.f32()[i]) * dx.f32()[i];
  EXPECT_NEAR(lhs, rhs, 1e-9 * std::max(1.0, std::abs(lhs)));
}

// Every value of a blocked16 tensor's storage, padding lanes included, and whether
// every padding lane is zero (what a convolution reading it assumes).
bool padding_lanes_are_zero(const Tensor& t) {
  const int64_t c = t.dim(1), cp = (c + 15) / 16 * 16, hw = t.dim(2) * t.dim(3);
  const float* v = t.f32();
  for (int64_t i = 0; i < t.dim(0) * cp * hw; ++i) {
    const int64_t block = (i / (16 * hw)) % (cp / 16), lane = i % 16;
    if (block * 16 + lane >= c && v[i] != 0.f) return false;
  }
  return true;
}

TEST_P(ShortcutPad, Blocked16GivesThePlainResultInItsOwnLayout) {
  // The training layer runs on blocked16 activations without reordering them.
  const PadCase c = GetParam();
  const Tensor x = rt::deterministic_tensor(4, "x", c.x);
  const Tensor y = subsample_pad_channels(x, c.sh, c.sw, c.before, c.after);
  const Tensor yb =
      subsample_pad_channels(to_layout(x, Layout::blocked16), c.sh, c.sw, c.before, c.after);
  ASSERT_EQ(yb.layout(), Layout::blocked16);
  EXPECT_TRUE(padding_lanes_are_zero(yb));
  EXPECT_EQ(max_abs_diff(to_layout(yb, Layout::plain), y), 0.f);
  const Tensor dy = rt::deterministic_tensor(5, "dy", y.shape());
  const Tensor dx = subsample_pad_channels_backward(dy, c.x, c.sh, c.sw, c.before);
  const Tensor dxb =
      subsample_pad_channels_backward(to_layout(dy, Layout::blocked16), c.x, c.sh, c.sw, c.before);
  ASSERT_EQ(dxb.layout(), Layout::blocked16);
  EXPECT_TRUE(padding_lanes_are_zero(dxb));
  EXPECT_EQ(max_abs_diff(to_layout(dxb, Layout::plain), dx), 0.f);
}

INSTANTIATE_TEST_SUITE_P(
    OddShapes, ShortcutPad,
    ::testing::Values(PadCase{{2, 3, 7, 5}, 2, 2, 1, 2}, PadCase{{1, 16, 32, 32}, 2, 2, 8, 8},
                      PadCase{{3, 5, 9, 4}, 3, 1, 0, 0}, PadCase{{2, 4, 1, 1}, 2, 2, 0, 3},
                      PadCase{{1, 2, 6, 11}, 1, 1, 5, 0}, PadCase{{2, 32, 13, 13}, 2, 2, 16, 16},
                      PadCase{{3, 17, 5, 6}, 2, 3, 7, 9}));

TEST(ShortcutPadErrors, BadInputFailsWithOneLine) {
  const Tensor x = rt::deterministic_tensor(4, "x", {1, 2, 4, 4});
  EXPECT_THROW(subsample_pad_channels(x, 0, 1, 0, 0), Error);
  EXPECT_THROW(subsample_pad_channels(x, 1, 1, -1, 0), Error);
  EXPECT_THROW(subsample_pad_channels(rt::deterministic_tensor(4, "x", {2, 4, 4}), 1, 1, 0, 0),
               Error);
  const Tensor dy = rt::deterministic_tensor(5, "dy", {1, 4, 2, 2});
  EXPECT_THROW(subsample_pad_channels_backward(dy, {1, 2, 5, 4}, 2, 2, 1), Error);
  try {
    subsample_pad_channels_backward(dy, {1, 2, 4, 4}, 2, 2, 3);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("subsample_pad_channels"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace resnet::backend
