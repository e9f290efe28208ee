// Linear against the naive reference kernel and finite differences, on odd sizes.

#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "resnet/core/error.h"
#include "resnet/nn/linear.h"
#include "resnet/ref/kernels.h"
#include "support/gradcheck.h"

namespace resnet {
namespace {

struct LinearCase {
  int64_t n, in, out;
  bool bias;
  friend void PrintTo(const LinearCase& p, std::ostream* os) { *os << p.name(); }
  std::string name() const {
    std::ostringstream s;
    s << "N" << n << "In" << in << "Out" << out << (bias ? "Bias" : "");
    return s.str();
  }
};

class LinearTest : public ::testing::TestWithParam<LinearCase> {};

TEST_P(LinearTest, ForwardAndBackwardMatchReference) {
  const LinearCase p = GetParam();
  nn::Linear fc(p.in, p.out, p.bias);
  fc.train();
  Tensor x = testing::random_tensor({p.n, p.in}, 1);
  Tensor y = fc.forward(x);
  Tensor bias = p.bias ? fc.bias()->value : Tensor();
  testing::expect_close(y, ref::linear_forward(x, fc.weight().value, bias), 1e-5,
                        "forward " + p.name());

  Tensor dy = testing::random_tensor(y.shape(), 2);
  fc.zero_grad();
  Tensor dx = fc.backward(dy);
  testing::expect_close(dx, ref::linear_backward_data(dy, fc.weight().value), 1e-5,
                        "diff_src " + p.name());
  Tensor ref_db;
  Tensor ref_dw = ref::linear_backward_weights(dy, x, p.bias ? &ref_db : nullptr);
  testing::expect_close(fc.weight().grad, ref_dw, 1e-5, "diff_weights " + p.name());
  if (p.bias) testing::expect_close(fc.bias()->grad, ref_db, 1e-5, "diff_bias " + p.name());

  // Parameter gradients accumulate across backward passes, until zero_grad().
  fc.forward(x);
  fc.backward(dy);
  Tensor twice = ref_dw.clone();
  for (float& v : twice.values()) v *= 2.f;
  testing::expect_close(fc.weight().grad, twice, 1e-5, "accumulated diff_weights " + p.name());

  nn::Linear inference(p.in, p.out, p.bias);
  inference.weight().value.copy_from(fc.weight().value);
  if (p.bias) inference.bias()->value.copy_from(fc.bias()->value);
  inference.eval();
  testing::expect_close(inference.forward(x), y, 0, "inference forward " + p.name());
}

TEST_P(LinearTest, GradientsMatchFiniteDifferences) {
  const LinearCase p = GetParam();
  nn::Linear fc(p.in, p.out, p.bias);
  fc.train();
  Tensor x = testing::random_tensor({p.n, p.in}, 3);
  testing::GradcheckOptions opt;
  opt.max_checks = 60;
  auto r = testing::gradcheck([&](const Tensor& v) { return fc.forward(v); },
                              [&](const Tensor& dy) {
                                fc.forward(x);
                                fc.zero_grad();
                                return fc.backward(dy);
                              },
                              x, opt, "d/dx " + p.name());
  EXPECT_TRUE(r.ok()) << r.report();

  // Weights and bias: the analytic gradients from one backward at the original values.
  Tensor y = fc.forward(x);
  Tensor loss_w = testing::random_tensor(y.shape(), 4);
  fc.zero_grad();
  fc.backward(loss_w);
  Tensor w0 = fc.weight().value.clone();
  auto rw = testing::check_gradient(
      [&](const Tensor& w) {
        fc.weight().value.copy_from(w);
        return fc.forward(x);
      },
      w0, loss_w, fc.weight().grad.clone(), opt, "d/dweight " + p.name());
  EXPECT_TRUE(rw.ok()) << rw.report();
  if (p.bias) {
    Tensor b0 = fc.bias()->value.clone();
    auto rb = testing::check_gradient(
        [&](const Tensor& b) {
          fc.bias()->value.copy_from(b);
          return fc.forward(x);
        },
        b0, loss_w, fc.bias()->grad.clone(), opt, "d/dbias " + p.name());
    EXPECT_TRUE(rb.ok()) << rb.report();
  }
}

INSTANTIATE_TEST_SUITE_P(LinearOddSizes, LinearTest,
                         ::testing::Values(LinearCase{3, 5, 7, true}, LinearCase{1, 17, 19, false},
                                           LinearCase{4, 512, 10, true},  // a ResNet head
                                           LinearCase{2, 1, 1, true}, LinearCase{5, 33, 65, false},
                                           LinearCase{7, 64, 3, true}),
                         [](const auto& info) { return info.param.name(); });

// PyTorch's default init: weight and bias both U(-1/sqrt(in), 1/sqrt(in)).
TEST(LinearInit, UniformWithinOneOverSqrtFanIn) {
  nn::Linear fc(64, 300);
  const float bound = 1.f / std::sqrt(64.f);  // 0.125
  float w_max = 0.f, b_max = 0.f;
  for (float v : fc.weight().value.values()) {
    ASSERT_LE(std::fabs(v), bound);
    w_max = std::max(w_max, std::fabs(v));
  }
  for (float v : fc.bias()->value.values()) {
    ASSERT_LE(std::fabs(v), bound);
    b_max = std::max(b_max, std::fabs(v));
  }
  // 19200 and 300 uniform draws reach close to the bound; a zero or narrower init does not.
  EXPECT_GT(w_max, 0.95f * bound);
  EXPECT_GT(b_max, 0.8f * bound);
  EXPECT_EQ(fc.weight().value.shape(), (Shape{300, 64}));
  EXPECT_EQ(fc.bias()->value.shape(), (Shape{300}));
  EXPECT_EQ(fc.parameter_count(), 64 * 300 + 300);
  auto sd = fc.state_dict();
  ASSERT_EQ(sd.size(), 2u);
  EXPECT_EQ(sd[0].first, "weight");
  EXPECT_EQ(sd[1].first, "bias");
  EXPECT_EQ(nn::Linear(4, 3, false).state_dict().size(), 1u);
}

// W = [1 2; 3 4; 5 6] (out 3, in 2), b = [0.5, -1, 2], x = [1 -1; 2 0.5]:
//   y[0] = [1-2+0.5, 3-4-1, 5-6+2]           = [-0.5, -2, 1]
//   y[1] = [2+1+0.5, 6+2-1, 10+3+2]          = [3.5, 7, 15]
// Backward of dy = [1 0 -1; 0 2 1]:
//   dx = dy W:   [1*(1,2) - (5,6), 2*(3,4) + (5,6)]        = [-4 -4; 11 14]
//   dW = dy^T x: row o = sum_n dy[n][o] x[n]:
//        [(1,-1), 2*(2,0.5), -(1,-1) + (2,0.5)]            = [1 -1; 4 1; 1 1.5]
//   db = column sums of dy                                  = [1, 2, 0]
TEST(LinearGolden, TwoByThree) {
  nn::Linear fc(2, 3);
  fc.weight().value.copy_from(Tensor::from_vector({3, 2}, {1, 2, 3, 4, 5, 6}));
  fc.bias()->value.copy_from(Tensor::from_vector({3}, {0.5f, -1, 2}));
  fc.train();
  fc.zero_grad();
  auto values = [](const Tensor& t) {
    return std::vector<float>(t.values().begin(), t.values().end());
  };
  Tensor y = fc.forward(Tensor::from_vector({2, 2}, {1, -1, 2, 0.5f}));
  EXPECT_EQ(values(y), (std::vector<float>{-0.5f, -2, 1, 3.5f, 7, 15}));
  Tensor dx = fc.backward(Tensor::from_vector({2, 3}, {1, 0, -1, 0, 2, 1}));
  EXPECT_EQ(values(dx), (std::vector<float>{-4, -4, 11, 14}));
  EXPECT_EQ(values(fc.weight().grad), (std::vector<float>{1, -1, 4, 1, 1, 1.5f}));
  EXPECT_EQ(values(fc.bias()->grad), (std::vector<float>{1, 2, 0}));
}

// Like torch.nn.Linear, leading dimensions are one batch: [2, 3, 5] -> [2, 3, 7].
TEST(LinearShapes, LeadingDimensionsAreOneBatch) {
  nn::Linear fc(5, 7);
  fc.train();
  Tensor x = testing::random_tensor({2, 3, 5}, 6);
  Tensor y = fc.forward(x);
  ASSERT_EQ(y.shape(), (Shape{2, 3, 7}));
  testing::expect_close(y.reshape({6, 7}),
                        ref::linear_forward(x.reshape({6, 5}), fc.weight().value, fc.bias()->value),
                        1e-5, "forward [2, 3, 5]");
  Tensor dy = testing::random_tensor({2, 3, 7}, 7);
  Tensor dx = fc.backward(dy);
  ASSERT_EQ(dx.shape(), (Shape{2, 3, 5}));
  testing::expect_close(dx.reshape({6, 5}),
                        ref::linear_backward_data(dy.reshape({6, 7}), fc.weight().value), 1e-5,
                        "diff_src [2, 3, 5]");
  EXPECT_EQ(fc.forward(testing::random_tensor({5}, 8)).shape(), (Shape{7}));
}

TEST(LinearPrint, MatchesPyTorch) {
  EXPECT_EQ(nn::Linear(512, 1000).to_string(),
            "Linear(in_features=512, out_features=1000, bias=True)");
  EXPECT_EQ(nn::Linear(3, 4, false).to_string(),
            "Linear(in_features=3, out_features=4, bias=False)");
}

TEST(LinearErrors, NamesTheLayerAndShapes) {
  nn::Linear fc(512, 1000);
  fc.train();
  try {
    fc.forward(Tensor({2, 511}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Linear(512, 1000): expected input [N, 512]"),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("got [2, 511]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(fc.forward(Tensor({2, 512, 1, 1})), Error);  // not flattened
  EXPECT_THROW(fc.forward(Tensor({0, 512})), Error);
  EXPECT_THROW(nn::Linear(0, 10), Error);
  EXPECT_THROW(nn::Linear(10, -1), Error);

  nn::Linear fresh(4, 3);
  EXPECT_THROW(fresh.backward(Tensor({2, 3})), Error);  // no forward yet
  fc.forward(Tensor({2, 512}));
  EXPECT_THROW(fc.backward(Tensor({2, 999})), Error);
  EXPECT_THROW(fc.backward(Tensor({3, 1000})), Error);
  EXPECT_NO_THROW(fc.backward(Tensor({2, 1000})));
}

}  // namespace
}  // namespace resnet
