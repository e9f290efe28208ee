// ReLU and Sequential.

#include <gtest/gtest.h>

#include "resnet/nn/conv2d.h"
#include "resnet/nn/relu.h"
#include "resnet/nn/sequential.h"
#include "resnet/ref/kernels.h"
#include "support/gradcheck.h"

namespace resnet {
namespace {

TEST(ReLU, MatchesReferenceOnOddShape) {
  nn::ReLU relu(true);
  relu.train();
  Tensor x = testing::random_tensor({3, 5, 7, 9}, 1);
  Tensor y = relu.forward(x);
  testing::expect_close(y, ref::relu_forward(x), 0, "relu forward");
  Tensor dy = testing::random_tensor(y.shape(), 2);
  testing::expect_close(relu.backward(dy), ref::relu_backward(dy, x), 0, "relu backward");
}

TEST(ReLU, GradientMatchesFiniteDifferencesAwayFromKinks) {
  nn::ReLU relu;
  relu.train();
  Tensor x = testing::random_tensor({2, 3, 5, 7}, 3);
  auto r = testing::gradcheck([&](const Tensor& v) { return relu.forward(v); },
                              [&](const Tensor& dy) {
                                relu.forward(x);
                                return relu.backward(dy);
                              },
                              x, {}, "relu d/dx N2C3H5W7");
  EXPECT_TRUE(r.ok()) << r.report();
}

// relu([-1, 0.5, 0, 2]) = [0, 0.5, 0, 2]; gradient passes where the output is positive.
TEST(ReLU, Golden) {
  nn::ReLU relu;
  relu.train();
  Tensor y = relu.forward(Tensor::from_vector({4}, {-1, 0.5f, 0, 2}));
  EXPECT_EQ(std::vector<float>(y.values().begin(), y.values().end()),
            (std::vector<float>{0, 0.5f, 0, 2}));
  Tensor dx = relu.backward(Tensor::from_vector({4}, {1, 1, 1, 1}));
  EXPECT_EQ(std::vector<float>(dx.values().begin(), dx.values().end()),
            (std::vector<float>{0, 1, 0, 1}));
}

TEST(ReLU, Print) {
  EXPECT_EQ(nn::ReLU(true).to_string(), "ReLU(inplace=True)");
  EXPECT_EQ(nn::ReLU().to_string(), "ReLU()");
}

TEST(Sequential, EmptyIsIdentityBothWays) {
  nn::Sequential seq;
  seq.train();
  Tensor x = testing::random_tensor({2, 3, 4, 5}, 4);
  Tensor y = seq.forward(x);
  EXPECT_EQ(max_abs_diff(y, x), 0.f);
  Tensor dy = testing::random_tensor({2, 3, 4, 5}, 5);
  EXPECT_EQ(max_abs_diff(seq.backward(dy), dy), 0.f);
  EXPECT_EQ(seq.to_string(), "Sequential()");
}

TEST(Sequential, ChainsAndNamesChildrenByIndex) {
  nn::Sequential seq;
  seq.push_back(std::make_shared<nn::Conv2d>(nn::Conv2dOptions::square(3, 4, 3, 1, 1, false)));
  seq.push_back(std::make_shared<nn::ReLU>());
  EXPECT_EQ(seq.to_string(),
            "Sequential(\n  (0): Conv2d(3, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), "
            "bias=False)\n"
            "  (1): ReLU()\n)");
  auto sd = seq.state_dict();
  ASSERT_EQ(sd.size(), 1u);
  EXPECT_EQ(sd[0].first, "0.weight");
  seq.train();
  Tensor x = testing::random_tensor({2, 3, 5, 5}, 6);
  testing::GradcheckOptions opt;
  opt.max_checks = 40;
  auto r = testing::gradcheck([&](const Tensor& v) { return seq.forward(v); },
                              [&](const Tensor& dy) {
                                seq.forward(x);
                                seq.zero_grad();
                                return seq.backward(dy);
                              },
                              x, opt, "sequential d/dx");
  EXPECT_TRUE(r.ok()) << r.report();
}

}  // namespace
}  // namespace resnet
