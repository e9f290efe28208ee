// A ReLU's backward from its bit mask equals oneDNN's backward from the kept output, bit
// for bit: odd sizes (a last byte of fewer than 8 values), both layouts (blocked16 with
// padding channels), exact zeros and negative zeros in the output.
//
// The residual add's one pass (add_relu_masked) writes what oneDNN's add+ReLU writes, the
// mask relu_mask takes of that, and a bf16 rounding equal to oneDNN's conversion of it,
// bit for bit; a bf16 convolution reads that rounding instead of converting again.

#include <gtest/gtest.h>

#include <cmath>

#include "resnet/backend/activation_ops.h"
#include "resnet/backend/eltwise.h"
#include "resnet/backend/relu_mask.h"
#include "resnet/core/error.h"
#include "resnet/nn/conv2d.h"
#include "support/gradcheck.h"

namespace resnet {
namespace {

using testing::bitwise_equal;

TEST(ReluMask, BackwardFromTheBitsEqualsBackwardFromTheOutput) {
  for (Layout layout : {Layout::plain, Layout::blocked16}) {
    for (const Shape& shape : std::vector<Shape>{{1, 1, 1, 1}, {2, 3, 5, 7}, {3, 21, 4, 3}}) {
      Tensor x = testing::random_tensor(shape, 3, -1.f, 1.f);
      x.f32()[0] = 0.f;  // the kink: no gradient, in both
      if (x.numel() > 1) x.f32()[1] = -0.f;
      const Tensor y = backend::relu_forward(backend::to_layout(x, layout));
      const Tensor dy = backend::to_layout(testing::random_tensor(shape, 4), layout);
      const backend::ReluMask mask = backend::relu_mask(y);
      EXPECT_TRUE(bitwise_equal(backend::relu_backward(dy, mask), backend::relu_backward(dy, y)))
          << shape_str(shape) << (layout == Layout::blocked16 ? " blocked16" : " plain");
    }
  }
}

TEST(ReluMask, AGradientOfAnotherShapeIsRefused) {
  const backend::ReluMask mask = backend::relu_mask(testing::random_tensor({2, 3, 4, 4}, 1));
  EXPECT_THROW(backend::relu_backward(testing::random_tensor({2, 3, 4, 5}, 2), mask), Error);
}

Tensor converted_to_bf16(const Tensor& t) {
  return backend::activation_convert(t, 1.f, DType::bf16, t.layout() == Layout::blocked16);
}

bool same_bits(const backend::ReluMask& a, const backend::ReluMask& b) {
  return a.shape == b.shape && a.layout == b.layout && bitwise_equal(a.bits, b.bits);
}

// Sums that cancel exactly, negative sums, a NaN operand (oneDNN's ReLU post-op writes +0
// for both), a denormal sum, odd sizes.
TEST(AddReluMasked, EqualsOneDnnsAddReluItsMaskAndItsConversionBitForBit) {
  for (Layout layout : {Layout::plain, Layout::blocked16}) {
    for (const Shape& shape : std::vector<Shape>{{1, 1, 1, 1}, {2, 3, 5, 7}, {3, 21, 4, 3}}) {
      Tensor a = testing::random_tensor(shape, 5, -1.f, 1.f);
      Tensor b = testing::random_tensor(shape, 6, -1.f, 1.f);
      if (a.numel() > 2) {
        b.f32()[0] = -a.f32()[0];
        a.f32()[1] = std::nanf("");
        a.f32()[2] = 1e-39f;  // a denormal sum: bf16 flushes it to zero
        b.f32()[2] = 0.f;
      }
      const Tensor al = backend::to_layout(a, layout), bl = backend::to_layout(b, layout);
      const Tensor expected = backend::add_relu(al, bl);
      const std::string what = shape_str(shape) + " " + layout_name(layout);
      for (bool rounding : {false, true}) {
        const backend::MaskedSum sum = backend::add_relu_masked(al, bl, rounding);
        EXPECT_TRUE(bitwise_equal(sum.out, expected)) << what;
        EXPECT_TRUE(same_bits(sum.mask, backend::relu_mask(expected))) << what;
        const Tensor rounded = sum.out.rounded(DType::bf16);
        EXPECT_EQ(rounded.defined(), rounding) << what;
        if (rounding) {
          EXPECT_TRUE(bitwise_equal(rounded, converted_to_bf16(expected))) << what;
        }
      }
    }
  }
}

// The rounding is dropped, never served stale or for another view of the storage.
TEST(AddReluMasked, TheRoundingHoldsOnlyForTheValuesItWasMadeFrom) {
  const Tensor a = testing::random_tensor({2, 3, 4, 4}, 7),
               b = testing::random_tensor({2, 3, 4, 4}, 8);
  backend::MaskedSum sum = backend::add_relu_masked(a, b, true);
  const Tensor copy = sum.out;  // shares the storage, and so the rounding
  EXPECT_TRUE(copy.rounded(DType::bf16).defined());
  EXPECT_FALSE(copy.rounded(DType::i8).defined());
  EXPECT_FALSE(sum.out.reshape({6, 16}).rounded(DType::bf16).defined());
  EXPECT_FALSE(sum.out.clone().rounded(DType::bf16).defined());
  sum.out.f32()[3] = 2.f;  // a write through the mutable accessor
  EXPECT_FALSE(copy.rounded(DType::bf16).defined());
  // Blocked by 8: element-wise all the same, but a convolution's conversion would write
  // plain, so no rounding is attached.
  const Tensor a8 = backend::to_layout(a, Layout::blocked8),
               b8 = backend::to_layout(b, Layout::blocked8);
  const backend::MaskedSum sum8 = backend::add_relu_masked(a8, b8, true);
  EXPECT_TRUE(bitwise_equal(backend::to_layout(sum8.out, Layout::plain), backend::add_relu(a, b)));
  EXPECT_FALSE(sum8.out.rounded(DType::bf16).defined());
  EXPECT_THROW(backend::add_relu_masked(a, backend::to_layout(b, Layout::blocked16), false), Error);
}

// A bf16 convolution reads the attached rounding: given one that is not x's (so that it
// shows), its output is that of the rounding, and without one it converts x itself.
TEST(AddReluMasked, ABf16ConvolutionReadsTheAttachedRounding) {
  if (!backend::cpu_has_native_bf16())
    GTEST_SKIP() << "this CPU has no native bf16 (AVX512_BF16): bf16 training would run f32";
  nn::Conv2d conv(nn::Conv2dOptions::square(3, 5, 3, 1, 1, false));
  conv.set_compute_type(DType::bf16);
  const Tensor x = testing::random_tensor({2, 3, 6, 5}, 9);
  const Tensor other = converted_to_bf16(testing::random_tensor({2, 3, 6, 5}, 10));
  const Tensor plain_out = conv.forward(x);
  const Tensor with_rounding = x.clone();
  with_rounding.attach_rounded(other);
  EXPECT_TRUE(bitwise_equal(conv.forward(with_rounding), conv.forward(other)));
  EXPECT_FALSE(bitwise_equal(conv.forward(with_rounding), plain_out));
  EXPECT_TRUE(bitwise_equal(conv.forward(x.clone()), plain_out));
}

}  // namespace
}  // namespace resnet
