// BatchNorm2d against the reference kernel, finite differences and hand-computed
// running statistics (PyTorch's semantics, the README's "Numerics").

#include <gtest/gtest.h>

#include "resnet/core/error.h"
#include "resnet/nn/batchnorm2d.h"
#include "resnet/ref/kernels.h"
#include "support/gradcheck.h"

namespace resnet {
namespace {

void randomize(nn::BatchNorm2d& bn, uint32_t seed) {
  bn.weight().value.copy_from(testing::random_tensor(bn.weight().value.shape(), seed, 0.5f, 1.5f));
  bn.bias().value.copy_from(testing::random_tensor(bn.bias().value.shape(), seed + 1));
  bn.running_mean().copy_from(testing::random_tensor(bn.running_mean().shape(), seed + 2));
  bn.running_var().copy_from(testing::random_tensor(bn.running_var().shape(), seed + 3, 0.5f, 2.f));
}

struct BnCase {
  int64_t n, c, h, w;
  friend void PrintTo(const BnCase& c, std::ostream* os) { *os << c.name(); }
  std::string name() const {
    return "N" + std::to_string(n) + "C" + std::to_string(c) + "H" + std::to_string(h) + "W" +
           std::to_string(w);
  }
};

class BatchNorm2dTest : public ::testing::TestWithParam<BnCase> {};

TEST_P(BatchNorm2dTest, TrainingMatchesReference) {
  const BnCase s = GetParam();
  nn::BatchNorm2d bn(s.c);
  randomize(bn, 10);
  Tensor x = testing::random_tensor({s.n, s.c, s.h, s.w}, 11, -2.f, 3.f);
  Tensor rm0 = bn.running_mean().clone(), rv0 = bn.running_var().clone();
  bn.train();
  Tensor y = bn.forward(x);
  auto expected = ref::batchnorm2d_forward_train(x, bn.weight().value, bn.bias().value, 1e-5);
  testing::expect_close(y, expected.dst, 1e-5, "dst " + s.name());
  // Running statistics: momentum 0.1, unbiased variance.
  const double count = static_cast<double>(s.n * s.h * s.w);
  for (int64_t i = 0; i < s.c; ++i) {
    EXPECT_NEAR(bn.running_mean().f32()[i], 0.9 * rm0.f32()[i] + 0.1 * expected.mean.f32()[i],
                1e-6);
    EXPECT_NEAR(bn.running_var().f32()[i],
                0.9 * rv0.f32()[i] + 0.1 * expected.var.f32()[i] * count / (count - 1), 1e-5);
  }
  EXPECT_EQ(bn.num_batches_tracked().i64()[0], 1);

  Tensor dy = testing::random_tensor(y.shape(), 12);
  bn.zero_grad();
  Tensor dx = bn.backward(dy);
  auto g =
      ref::batchnorm2d_backward_train(dy, x, bn.weight().value, expected.mean, expected.var, 1e-5);
  testing::expect_close(dx, g.diff_src, 1e-4, "diff_src " + s.name());
  testing::expect_close(bn.weight().grad, g.diff_weight, 1e-5, "diff_weight " + s.name());
  testing::expect_close(bn.bias().grad, g.diff_bias, 1e-5, "diff_bias " + s.name());
}

TEST_P(BatchNorm2dTest, EvalMatchesReference) {
  const BnCase s = GetParam();
  nn::BatchNorm2d bn(s.c);
  randomize(bn, 20);
  Tensor x = testing::random_tensor({s.n, s.c, s.h, s.w}, 21, -2.f, 3.f);
  bn.eval();
  nn::GradEnabledGuard grad(true);
  Tensor y = bn.forward(x);
  testing::expect_close(y,
                        ref::batchnorm2d_forward_eval(x, bn.weight().value, bn.bias().value,
                                                      bn.running_mean(), bn.running_var(), 1e-5),
                        1e-5, "dst " + s.name());
  EXPECT_EQ(bn.num_batches_tracked().i64()[0], 0);
  Tensor dy = testing::random_tensor(y.shape(), 22);
  bn.zero_grad();
  Tensor dx = bn.backward(dy);
  auto g = ref::batchnorm2d_backward_eval(dy, x, bn.weight().value, bn.running_mean(),
                                          bn.running_var(), 1e-5);
  testing::expect_close(dx, g.diff_src, 1e-5, "diff_src " + s.name());
  testing::expect_close(bn.weight().grad, g.diff_weight, 1e-5, "diff_weight " + s.name());
  testing::expect_close(bn.bias().grad, g.diff_bias, 1e-5, "diff_bias " + s.name());
}

TEST_P(BatchNorm2dTest, TrainingGradientMatchesFiniteDifferences) {
  const BnCase s = GetParam();
  nn::BatchNorm2d bn(s.c);
  randomize(bn, 30);
  bn.train();
  Tensor x = testing::random_tensor({s.n, s.c, s.h, s.w}, 31, -2.f, 3.f);
  testing::GradcheckOptions opt;
  opt.max_checks = 60;
  opt.eps = 1e-2;
  auto r = testing::gradcheck([&](const Tensor& v) { return bn.forward(v); },
                              [&](const Tensor& dy) {
                                bn.forward(x);
                                bn.zero_grad();
                                return bn.backward(dy);
                              },
                              x, opt, "d/dx " + s.name());
  EXPECT_TRUE(r.ok()) << r.report();
}

INSTANTIATE_TEST_SUITE_P(OddShapes, BatchNorm2dTest,
                         ::testing::Values(BnCase{3, 5, 7, 9}, BnCase{2, 17, 3, 5},
                                           BnCase{1, 3, 1, 2}, BnCase{4, 1, 5, 5}),
                         [](const auto& info) { return info.param.name(); });

// One channel holding 1, 2, 3, 4: mean 2.5, biased variance 1.25 (used to normalize),
// unbiased variance 5/3 (into running_var).
// running_mean = 0.9 * 0 + 0.1 * 2.5 = 0.25; running_var = 0.9 * 1 + 0.1 * 5/3 = 1.0666...
// Normalized: (x - 2.5) / sqrt(1.25 + 1e-5) = -1.3416, -0.4472, 0.4472, 1.3416.
TEST(BatchNorm2dGolden, RunningStatisticsByHand) {
  nn::BatchNorm2d bn(1);
  bn.train();
  Tensor y = bn.forward(Tensor::from_vector({1, 1, 2, 2}, {1, 2, 3, 4}));
  EXPECT_NEAR(bn.running_mean().f32()[0], 0.25f, 1e-7);
  EXPECT_NEAR(bn.running_var().f32()[0], 0.9f + 0.1f * 5.f / 3.f, 1e-6);
  EXPECT_NEAR(y.f32()[0], -1.5 / std::sqrt(1.25 + 1e-5), 1e-5);
  EXPECT_NEAR(y.f32()[3], 1.5 / std::sqrt(1.25 + 1e-5), 1e-5);
  bn.forward(Tensor::from_vector({1, 1, 2, 2}, {1, 2, 3, 4}));
  EXPECT_EQ(bn.num_batches_tracked().i64()[0], 2);
}

TEST(BatchNorm2dErrors, OneValuePerChannelInTraining) {
  nn::BatchNorm2d bn(3);
  bn.train();
  EXPECT_THROW(bn.forward(Tensor({1, 3, 1, 1})), Error);
  bn.eval();
  EXPECT_NO_THROW(bn.forward(Tensor({1, 3, 1, 1})));
  EXPECT_THROW(bn.forward(Tensor({1, 4, 2, 2})), Error);
}

TEST(BatchNorm2dPrint, MatchesPyTorch) {
  EXPECT_EQ(nn::BatchNorm2d(128).to_string(),
            "BatchNorm2d(128, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)");
}

TEST(BatchNorm2dState, KeysAndInitialValues) {
  nn::BatchNorm2d bn(4);
  auto sd = bn.state_dict();
  ASSERT_EQ(sd.size(), 5u);
  EXPECT_EQ(sd[0].first, "weight");
  EXPECT_EQ(sd[1].first, "bias");
  EXPECT_EQ(sd[2].first, "running_mean");
  EXPECT_EQ(sd[3].first, "running_var");
  EXPECT_EQ(sd[4].first, "num_batches_tracked");
  EXPECT_EQ(sd[4].second->dtype(), DType::i64);
  EXPECT_EQ(sd[4].second->rank(), 0);
  EXPECT_FLOAT_EQ(bn.running_var().f32()[3], 1.f);
}

}  // namespace
}  // namespace resnet

namespace resnet {
namespace {

// Few values per channel far from zero, as deep in a network at small inputs: the
// statistics must not cancel catastrophically (E[x^2] - E[x]^2 would).
TEST(BatchNorm2dConditioning, FewValuesWithLargeMean) {
  nn::BatchNorm2d bn(4);
  bn.train();
  Tensor x = testing::random_tensor({2, 4, 2, 2}, 41, 99.f, 101.f);
  Tensor y = bn.forward(x);
  auto expected = ref::batchnorm2d_forward_train(x, bn.weight().value, bn.bias().value, 1e-5);
  testing::expect_close(y, expected.dst, 1e-4, "dst");
  Tensor dy = testing::random_tensor(y.shape(), 42);
  bn.zero_grad();
  Tensor dx = bn.backward(dy);
  auto g =
      ref::batchnorm2d_backward_train(dy, x, bn.weight().value, expected.mean, expected.var, 1e-5);
  testing::expect_close(dx, g.diff_src, 1e-4, "diff_src");
  testing::expect_close(bn.weight().grad, g.diff_weight, 1e-4, "diff_weight");
}

}  // namespace
}  // namespace resnet
