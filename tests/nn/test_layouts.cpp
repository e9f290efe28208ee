// Blocked16 activations (nChw16c, used inside networks in training) give the same numbers
// as plain ones, forward and backward, including channel counts that pad the last block.

#include <gtest/gtest.h>

#include "resnet/backend/eltwise.h"
#include "resnet/core/error.h"
#include "resnet/nn/batchnorm2d.h"
#include "resnet/nn/conv2d.h"
#include "resnet/nn/maxpool2d.h"
#include "resnet/ref/kernels.h"
#include "support/gradcheck.h"

namespace resnet {
namespace {

Tensor blocked(const Tensor& t) {
  return backend::to_layout(t, Layout::blocked16);
}
Tensor plain(const Tensor& t) {
  return backend::to_layout(t, Layout::plain);
}

class LayoutChannels : public ::testing::TestWithParam<int64_t> {};

TEST_P(LayoutChannels, RoundTripAndPaddingStaysZero) {
  const int64_t c = GetParam();
  Tensor x = testing::random_tensor({3, c, 5, 7}, 1);
  Tensor b = blocked(x);
  EXPECT_EQ(b.layout(), Layout::blocked16);
  EXPECT_EQ(b.storage_numel(), 3 * ((c + 15) / 16 * 16) * 5 * 7);
  EXPECT_EQ(max_abs_diff(plain(b), x), 0.f);
}

TEST_P(LayoutChannels, BatchNormWithAndWithoutReluMatchesPlain) {
  const int64_t c = GetParam();
  for (bool train : {true, false}) {
    for (bool relu : {false, true}) {
      nn::BatchNorm2d a(c), b(c);
      for (auto* bn : {&a, &b}) {
        bn->running_mean().copy_from(testing::random_tensor({c}, 2));
        bn->weight().value.copy_from(testing::random_tensor({c}, 3, 0.5f, 1.5f));
        bn->set_fused_relu(relu);
        bn->train(train);
      }
      nn::GradEnabledGuard grad(true);
      Tensor x = testing::random_tensor({3, c, 5, 7}, 4);
      Tensor dy = testing::random_tensor({3, c, 5, 7}, 5);
      const std::string what =
          "C" + std::to_string(c) + (train ? " train" : " eval") + (relu ? " relu" : "");
      Tensor ya = a.forward(x);
      Tensor yb = b.forward(blocked(x));
      testing::expect_close(plain(yb), ya, 1e-6, what + " forward");
      if (relu) {
        Tensor bn_only =
            train ? ref::batchnorm2d_forward_train(x, a.weight().value, a.bias().value, 1e-5).dst
                  : ref::batchnorm2d_forward_eval(x, a.weight().value, a.bias().value,
                                                  a.running_mean(), a.running_var(), 1e-5);
        testing::expect_close(ya, ref::relu_forward(bn_only), 1e-5,
                              what + " fused ReLU vs reference");
      }
      testing::expect_close(plain(b.backward(blocked(dy))), a.backward(dy), 1e-5,
                            what + " backward");
      testing::expect_close(b.weight().grad, a.weight().grad, 1e-5, what + " weight grad");
      testing::expect_close(b.bias().grad, a.bias().grad, 1e-5, what + " bias grad");
    }
  }
}

TEST_P(LayoutChannels, ConvolutionMatchesPlain) {
  const int64_t c = GetParam();
  nn::Conv2d a(nn::Conv2dOptions::square(c, c + 3, 3, 2, 1, false));
  nn::Conv2d b(nn::Conv2dOptions::square(c, c + 3, 3, 2, 1, false));
  b.weight().value.copy_from(a.weight().value);
  a.train();
  b.train();
  Tensor x = testing::random_tensor({2, c, 9, 7}, 6);
  Tensor ya = a.forward(x);
  Tensor yb = b.forward(blocked(x));
  EXPECT_EQ(yb.layout(), Layout::blocked16);
  testing::expect_close(plain(yb), ya, 1e-5, "forward");
  Tensor dy = testing::random_tensor(ya.shape(), 7);
  Tensor dxb = b.backward(blocked(dy));
  EXPECT_EQ(dxb.layout(), Layout::blocked16);
  testing::expect_close(plain(dxb), a.backward(dy), 1e-5, "diff_src");
  testing::expect_close(b.weight().grad, a.weight().grad, 1e-5, "diff_weights");
}

TEST_P(LayoutChannels, MaxPoolMatchesPlainAndKeepsTheLayout) {
  const int64_t c = GetParam();
  nn::MaxPool2d a(3, 2, 1), b(3, 2, 1);
  nn::GradEnabledGuard grad(true);
  Tensor x = testing::random_tensor({2, c, 11, 8}, 8);
  Tensor ya = a.forward(x);
  Tensor yb = b.forward(blocked(x));
  EXPECT_EQ(yb.layout(), Layout::blocked16);
  EXPECT_EQ(max_abs_diff(plain(yb), ya), 0.f);
  // The lanes that pad the last channel block stay zero (the next kernels read them).
  const int64_t blocks = (c + 15) / 16, hw = yb.dim(2) * yb.dim(3), used = c - (blocks - 1) * 16;
  for (int64_t n = 0; n < yb.dim(0); ++n)
    for (int64_t p = 0; p < hw; ++p)
      for (int64_t lane = used; lane < 16; ++lane)
        ASSERT_EQ(yb.f32()[((n * blocks + blocks - 1) * hw + p) * 16 + lane], 0.f)
            << "padding lane " << lane;
  Tensor dy = testing::random_tensor(ya.shape(), 9);
  Tensor dxb = b.backward(blocked(dy));
  EXPECT_EQ(dxb.layout(), Layout::blocked16);
  EXPECT_EQ(max_abs_diff(plain(dxb), a.backward(dy)), 0.f);
}

INSTANTIATE_TEST_SUITE_P(Channels, LayoutChannels, ::testing::Values(5, 16, 17, 32),
                         [](const auto& info) { return "C" + std::to_string(info.param); });

// A plain image into a stem convolution that writes blocked activations.
TEST(LayoutStem, PlainInBlockedOut) {
  nn::Conv2d conv(nn::Conv2dOptions::square(3, 16, 3, 1, 1, false));
  conv.train();
  Tensor x = testing::random_tensor({2, 3, 8, 8}, 8);
  Tensor y_plain = conv.forward(x);
  conv.set_output_layout(Layout::blocked16);
  Tensor y = conv.forward(x);
  EXPECT_EQ(y.layout(), Layout::blocked16);
  testing::expect_close(plain(y), y_plain, 1e-6, "stem forward");
  conv.zero_grad();
  conv.backward_weights_only(blocked(testing::random_tensor(y.shape(), 9)));
  EXPECT_GT(max_abs(conv.weight().grad), 0.f);
}

TEST(LayoutEltwise, AddReluBothLayouts) {
  Tensor a = testing::random_tensor({2, 20, 5, 5}, 10),
         b = testing::random_tensor({2, 20, 5, 5}, 11);
  Tensor expected = ref::relu_forward(ref::add(a, b));
  testing::expect_close(backend::add_relu(a, b), expected, 0, "plain");
  testing::expect_close(plain(backend::add_relu(blocked(a), blocked(b))), expected, 0, "blocked");
  EXPECT_THROW(backend::add_relu(a, blocked(b)), Error);
}

}  // namespace
}  // namespace resnet
