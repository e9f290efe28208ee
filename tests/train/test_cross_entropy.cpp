// Softmax cross-entropy: hand-derived golden cases, PyTorch's values (with label smoothing),
// finite differences, numerical stability and bad input.

#include "resnet/train/cross_entropy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <vector>

#include "resnet/io/safetensors.h"
#include "support/gradcheck.h"
#include "train/train_test_util.h"

namespace resnet {
namespace {

using train::cross_entropy;

// Logits [[0, 0], [ln 3, 0]], labels {0, 1}:
//   row 0: softmax (1/2, 1/2), nll = ln 2;      row 1: softmax (3/4, 1/4), nll = ln 4.
//   loss = (ln 2 + 2 ln 2) / 2 = 1.5 ln 2.
//   grad = (softmax - onehot) / N: row 0 (-1/2, 1/2) / 2, row 1 (3/4, -3/4) / 2.
TEST(CrossEntropy, GoldenTwoByTwo) {
  const Tensor logits = Tensor::from_vector({2, 2}, {0.f, 0.f, float(std::log(3.0)), 0.f});
  const auto r = cross_entropy(logits, std::vector<int64_t>{0, 1});
  EXPECT_NEAR(r.loss, 1.5 * std::log(2.0), 1e-7);
  testing::expect_close(
      r.grad_logits, Tensor::from_vector({2, 2}, {-0.25f, 0.25f, 0.375f, -0.375f}), 1e-6, "grad");
}

// The same with eps = 0.2, so targets are (1 - eps) onehot + eps / 2 = 0.9 / 0.1:
//   row 0 is uniform, so every log p is -ln 2 and the loss is ln 2 whatever the target.
//   row 1: -(1/K) sum_j log p_j = lse - mean(z) = ln 4 - (ln 3) / 2, so
//          loss = (1 - eps) ln 4 + eps (ln 4 - (ln 3) / 2) = ln 4 - 0.1 ln 3.
//   loss = (ln 2 + 2 ln 2 - 0.1 ln 3) / 2 = 1.5 ln 2 - 0.05 ln 3.
//   grad row 0 = ((1/2 - 0.9), (1/2 - 0.1)) / 2 = (-0.2, 0.2),
//   grad row 1 = ((3/4 - 0.1), (1/4 - 0.9)) / 2 = (0.325, -0.325).
TEST(CrossEntropy, GoldenLabelSmoothing) {
  const Tensor logits = Tensor::from_vector({2, 2}, {0.f, 0.f, float(std::log(3.0)), 0.f});
  const auto r = cross_entropy(logits, std::vector<int64_t>{0, 1}, 0.2);
  EXPECT_NEAR(r.loss, 1.5 * std::log(2.0) - 0.05 * std::log(3.0), 1e-7);
  testing::expect_close(r.grad_logits, Tensor::from_vector({2, 2}, {-0.2f, 0.2f, 0.325f, -0.325f}),
                        1e-6, "grad");
}

// tools/gen_train_fixtures.py: F.cross_entropy in float64 on the same f32 logits, for
// several label_smoothing values; a row of the logits is shifted by +40.
TEST(CrossEntropy, MatchesTorchWithLabelSmoothing) {
  const io::SafetensorsFile f =
      io::read_safetensors(testing::train_fixture("cross_entropy.safetensors"));
  const nlohmann::json j = testing::read_train_json("cross_entropy.json");
  const Tensor& logits = *f.find("logits");
  const Tensor& labels_t = *f.find("labels");
  const std::span<const int64_t> labels(labels_t.i64(), size_t(labels_t.numel()));
  const auto smoothing = j.at("label_smoothing").get<std::vector<double>>();
  const auto losses = j.at("loss").get<std::vector<double>>();
  ASSERT_EQ(smoothing.size(), 3u);
  for (size_t i = 0; i < smoothing.size(); ++i) {
    std::ostringstream what;
    what << "label_smoothing=" << smoothing[i];
    const auto r = cross_entropy(logits, labels, smoothing[i]);
    EXPECT_NEAR(r.loss, losses[i], 1e-9 * std::fabs(losses[i])) << what.str();
    std::ostringstream key;
    key << "grad." << i;
    testing::expect_close(r.grad_logits, *f.find(key.str()), 1e-6, what.str() + " grad");
  }
}

void check_gradient(double eps) {
  const Tensor x0 = testing::random_tensor({4, 5}, 21, -2.f, 2.f);
  const std::vector<int64_t> labels = {0, 4, 2, 2};
  // The loss minus its value at x0, so the f32 output keeps the differences' precision.
  const double base = cross_entropy(x0, labels, eps).loss;
  auto forward = [&](const Tensor& x) {
    return Tensor::full({1}, static_cast<float>(cross_entropy(x, labels, eps).loss - base));
  };
  auto backward = [&](const Tensor& w) {
    Tensor g = cross_entropy(x0, labels, eps).grad_logits.clone();
    for (float& v : g.values()) v *= w.f32()[0];
    return g;
  };
  testing::GradcheckOptions o;
  o.eps = 1e-3;
  o.atol = 1e-4;
  o.rtol = 1e-3;
  std::ostringstream what;
  what << "cross_entropy label_smoothing=" << eps;
  const auto r = testing::gradcheck(forward, backward, x0, o, what.str());
  EXPECT_TRUE(r.ok()) << r.report();
  EXPECT_EQ(r.checked, 20);
  EXPECT_EQ(r.kinks, 0);
}

TEST(CrossEntropy, GradcheckPlain) {
  check_gradient(0.0);
}
TEST(CrossEntropy, GradcheckLabelSmoothing0p3) {
  check_gradient(0.3);
}

// The checker with the same settings must reject a gradient that is not divided by N.
TEST(CrossEntropy, GradcheckRejectsUnscaledGradient) {
  const Tensor x0 = testing::random_tensor({4, 5}, 21, -2.f, 2.f);
  const std::vector<int64_t> labels = {0, 4, 2, 2};
  const double base = cross_entropy(x0, labels).loss;
  auto forward = [&](const Tensor& x) {
    return Tensor::full({1}, static_cast<float>(cross_entropy(x, labels).loss - base));
  };
  auto backward = [&](const Tensor& w) {
    Tensor g = cross_entropy(x0, labels).grad_logits.clone();
    for (float& v : g.values()) v *= 4.f * w.f32()[0];
    return g;
  };
  testing::GradcheckOptions o;
  o.eps = 1e-3;
  o.atol = 1e-4;
  o.rtol = 1e-3;
  EXPECT_FALSE(testing::gradcheck(forward, backward, x0, o).ok());
}

// log-sum-exp: adding a constant to a row changes nothing, even a huge one.
TEST(CrossEntropy, ShiftInvariantAndFiniteForHugeLogits) {
  const Tensor x = testing::random_tensor({3, 7}, 5);
  Tensor shifted = x.clone();
  for (int64_t j = 0; j < 7; ++j) shifted.f32()[7 + j] += 1000.f;
  const std::vector<int64_t> labels = {6, 0, 3};
  const auto a = cross_entropy(x, labels, 0.1), b = cross_entropy(shifted, labels, 0.1);
  EXPECT_NEAR(a.loss, b.loss, 1e-4);
  testing::expect_close(b.grad_logits, a.grad_logits, 1e-3, "shifted grad");

  // One row with a 1e4 gap: the label's probability underflows to 0, yet the loss is the
  // gap (nll = lse - z_y = 1e4) and the gradient exactly (onehot(argmax) - onehot(y)) / N.
  const Tensor far = Tensor::from_vector({1, 2}, {1e4f, 0.f});
  const auto r = cross_entropy(far, std::vector<int64_t>{1});
  EXPECT_DOUBLE_EQ(r.loss, 1e4);
  EXPECT_FLOAT_EQ(r.grad_logits.f32()[0], 1.f);
  EXPECT_FLOAT_EQ(r.grad_logits.f32()[1], -1.f);
}

// Each row of the gradient sums to 0 (softmax and target both sum to 1).
TEST(CrossEntropy, GradientRowsSumToZero) {
  const Tensor x = testing::random_tensor({5, 9}, 8, -3.f, 3.f);
  const auto r = cross_entropy(x, std::vector<int64_t>{0, 8, 1, 2, 3}, 0.25);
  for (int64_t i = 0; i < 5; ++i) {
    double sum = 0.0;
    for (int64_t j = 0; j < 9; ++j) sum += r.grad_logits.f32()[i * 9 + j];
    EXPECT_NEAR(sum, 0.0, 1e-7) << "row " << i;
  }
}

TEST(CrossEntropy, LabelOutOfRangeNamesLabelAndClassCount) {
  const Tensor x = testing::random_tensor({2, 5}, 1);
  EXPECT_TRAIN_ERROR(cross_entropy(x, std::vector<int64_t>{0, 5}), "cross_entropy", "label 5",
                     "sample 1", "5 classes");
  EXPECT_TRAIN_ERROR(cross_entropy(x, std::vector<int64_t>{-1, 0}), "label -1", "sample 0");
}

TEST(CrossEntropy, RejectsBadArguments) {
  const Tensor x = testing::random_tensor({2, 5}, 1);
  EXPECT_TRAIN_ERROR(cross_entropy(x, std::vector<int64_t>{0}), "expected 2 labels", "got 1");
  EXPECT_TRAIN_ERROR(cross_entropy(testing::random_tensor({10}, 1), std::vector<int64_t>{0}),
                     "[N, K]", "[10]");
  EXPECT_TRAIN_ERROR(cross_entropy(Tensor({0, 5}), std::vector<int64_t>{}), "N >= 1");
  EXPECT_TRAIN_ERROR(cross_entropy(x, std::vector<int64_t>{0, 1}, 1.5), "label_smoothing", "1.5");
  EXPECT_TRAIN_ERROR(cross_entropy(Tensor({2, 5}, DType::i64), std::vector<int64_t>{0, 1}), "f32",
                     "i64");
}

}  // namespace
}  // namespace resnet
