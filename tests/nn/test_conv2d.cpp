// Conv2d against the naive reference kernel and finite differences, on odd shapes.

#include <gtest/gtest.h>

#include "resnet/core/error.h"
#include "resnet/nn/conv2d.h"
#include "resnet/ref/kernels.h"
#include "support/gradcheck.h"

namespace resnet {
namespace {

struct ConvCase {
  int64_t n, ic, oc, h, w, k, stride, pad, dilation, groups;
  bool bias;
  friend void PrintTo(const ConvCase& c, std::ostream* os) { *os << c.name(); }
  std::string name() const {
    return "N" + std::to_string(n) + "IC" + std::to_string(ic) + "OC" + std::to_string(oc) + "H" +
           std::to_string(h) + "W" + std::to_string(w) + "K" + std::to_string(k) + "S" +
           std::to_string(stride) + "P" + std::to_string(pad) + "D" + std::to_string(dilation) +
           "G" + std::to_string(groups) + (bias ? "Bias" : "");
  }
  nn::Conv2dOptions options() const {
    auto o = nn::Conv2dOptions::square(ic, oc, k, stride, pad, bias, groups);
    o.dilation_h = o.dilation_w = dilation;
    return o;
  }
  ref::Conv2dParams params() const {
    ref::Conv2dParams p;
    p.stride_h = p.stride_w = stride;
    p.pad_h = p.pad_w = pad;
    p.dilation_h = p.dilation_w = dilation;
    p.groups = groups;
    return p;
  }
};

class Conv2dTest : public ::testing::TestWithParam<ConvCase> {};

TEST_P(Conv2dTest, ForwardAndBackwardMatchReference) {
  const ConvCase c = GetParam();
  nn::Conv2d conv(c.options());
  conv.train();
  Tensor x = testing::random_tensor({c.n, c.ic, c.h, c.w}, 1);
  Tensor y = conv.forward(x);
  Tensor bias = c.bias ? conv.bias()->value : Tensor();
  Tensor expected = ref::conv2d_forward(x, conv.weight().value, bias, c.params());
  testing::expect_close(y, expected, 1e-5, "forward " + c.name());

  Tensor dy = testing::random_tensor(y.shape(), 2);
  conv.zero_grad();
  Tensor dx = conv.backward(dy);
  testing::expect_close(dx,
                        ref::conv2d_backward_data(dy, conv.weight().value, x.shape(), c.params()),
                        1e-5, "diff_src " + c.name());
  Tensor ref_db;
  if (c.bias) ref_db = Tensor({c.oc});
  Tensor ref_dw = ref::conv2d_backward_weights(dy, x, conv.weight().value.shape(), c.params(),
                                               c.bias ? &ref_db : nullptr);
  testing::expect_close(conv.weight().grad, ref_dw, 1e-5, "diff_weights " + c.name());
  if (c.bias) testing::expect_close(conv.bias()->grad, ref_db, 1e-5, "diff_bias " + c.name());
}

TEST_P(Conv2dTest, GradientsMatchFiniteDifferences) {
  const ConvCase c = GetParam();
  nn::Conv2d conv(c.options());
  conv.train();
  Tensor x = testing::random_tensor({c.n, c.ic, c.h, c.w}, 3);
  testing::GradcheckOptions opt;
  opt.max_checks = 60;
  auto r = testing::gradcheck([&](const Tensor& v) { return conv.forward(v); },
                              [&](const Tensor& dy) {
                                conv.forward(x);
                                conv.zero_grad();
                                return conv.backward(dy);
                              },
                              x, opt, "d/dx " + c.name());
  EXPECT_TRUE(r.ok()) << r.report();

  // Weights: the analytic gradient from one backward at the original weights.
  Tensor w0 = conv.weight().value.clone();
  Tensor y = conv.forward(x);
  Tensor loss_w = testing::random_tensor(y.shape(), 4);
  conv.zero_grad();
  conv.backward(loss_w);
  Tensor analytic = conv.weight().grad.clone();
  auto rw = testing::check_gradient(
      [&](const Tensor& w) {
        conv.weight().value.copy_from(w);
        return conv.forward(x);
      },
      w0, loss_w, analytic, opt, "d/dweight " + c.name());
  EXPECT_TRUE(rw.ok()) << rw.report();
}

INSTANTIATE_TEST_SUITE_P(OddShapes, Conv2dTest,
                         ::testing::Values(ConvCase{3, 5, 7, 7, 9, 3, 1, 1, 1, 1, false},
                                           ConvCase{3, 5, 8, 7, 9, 3, 2, 1, 1, 1, false},
                                           ConvCase{2, 5, 6, 7, 9, 1, 2, 0, 1, 1, false},
                                           ConvCase{2, 4, 6, 9, 7, 3, 1, 1, 1, 2, true},
                                           ConvCase{1, 3, 5, 11, 10, 3, 1, 2, 2, 1, true},
                                           ConvCase{2, 3, 4, 13, 13, 7, 2, 3, 1, 1, false},
                                           ConvCase{1, 17, 19, 5, 6, 3, 1, 1, 1, 1, true}),
                         [](const auto& info) { return info.param.name(); });

// 1x1x3x3 input 1..9, 2x2 kernel of ones, stride 1, no padding: each output is the sum
// of a 2x2 window: [1+2+4+5, 2+3+5+6; 4+5+7+8, 5+6+8+9] = [12, 16; 24, 28], plus bias 0.5.
TEST(Conv2dGolden, TwoByTwoWindowSums) {
  nn::Conv2d conv(nn::Conv2dOptions{1, 1, 2, 2, 1, 1, 0, 0, 1, 1, 1, true});
  conv.weight().value.fill(1.f);
  conv.bias()->value.fill(0.5f);
  Tensor x = Tensor::from_vector({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  conv.eval();
  Tensor y = conv.forward(x);
  EXPECT_EQ(y.shape(), (Shape{1, 1, 2, 2}));
  EXPECT_FLOAT_EQ(y.f32()[0], 12.5f);
  EXPECT_FLOAT_EQ(y.f32()[1], 16.5f);
  EXPECT_FLOAT_EQ(y.f32()[2], 24.5f);
  EXPECT_FLOAT_EQ(y.f32()[3], 28.5f);
}

TEST(Conv2dPrint, MatchesPyTorch) {
  EXPECT_EQ(nn::Conv2d(nn::Conv2dOptions::square(64, 128, 3, 2, 1, false)).to_string(),
            "Conv2d(64, 128, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), bias=False)");
  EXPECT_EQ(nn::Conv2d(nn::Conv2dOptions::square(3, 8, 1)).to_string(),
            "Conv2d(3, 8, kernel_size=(1, 1), stride=(1, 1))");
  auto o = nn::Conv2dOptions::square(4, 8, 3, 1, 2, true, 2);
  o.dilation_h = o.dilation_w = 2;
  EXPECT_EQ(
      nn::Conv2d(o).to_string(),
      "Conv2d(4, 8, kernel_size=(3, 3), stride=(1, 1), padding=(2, 2), dilation=(2, 2), groups=2)");
}

TEST(Conv2dErrors, NamesTheLayerAndShapes) {
  nn::Conv2d conv(nn::Conv2dOptions::square(5, 8, 3, 1, 1, false));
  try {
    conv.forward(Tensor({2, 4, 7, 9}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Conv2d(5, 8)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[2, 4, 7, 9]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(conv.forward(Tensor({4, 7, 9})), Error);
  EXPECT_THROW(nn::Conv2d(nn::Conv2dOptions::square(5, 8, 3, 1, 1, false, 2)), Error);
  nn::Conv2d fresh(nn::Conv2dOptions::square(5, 8, 3, 1, 1, false));
  EXPECT_THROW(fresh.backward(Tensor({1, 8, 3, 3})), Error);  // no forward yet
}

}  // namespace
}  // namespace resnet
