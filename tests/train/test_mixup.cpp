// MixUp and CutMix (train/mixup.h) as torchvision.transforms.v2 defines them, the Beta
// sampler, determinism from (seed, epoch, batch), and the soft-target cross-entropy
// against PyTorch (tests/fixtures/finetune/soft_cross_entropy.safetensors).

#include "resnet/train/mixup.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "resnet/io/safetensors.h"
#include "resnet/train/cross_entropy.h"
#include "support/gradcheck.h"
#include "train/train_test_util.h"

namespace resnet {
namespace {

using train::MixOptions;

TEST(Mixup, BetaSamplerHasTheRightMoments) {
  for (double alpha : {0.2, 1.0, 2.0}) {
    double sum = 0.0, sq = 0.0;
    const int n = 20000;
    for (int i = 0; i < n; ++i) {
      const double x = train::sample_symmetric_beta(alpha, 1, 0, static_cast<uint64_t>(i));
      ASSERT_TRUE(x >= 0.0 && x <= 1.0);
      sum += x;
      sq += x * x;
    }
    const double mean = sum / n, var = sq / n - mean * mean;
    // Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1)).
    EXPECT_NEAR(mean, 0.5, 0.01) << alpha;
    EXPECT_NEAR(var, 1.0 / (4.0 * (2.0 * alpha + 1.0)), 0.01) << alpha;
  }
}

Tensor batch(int64_t n, int64_t c, int64_t h, int64_t w) {
  return testing::random_tensor({n, c, h, w}, 11);
}

TEST(Mixup, MixupBlendsEachSampleWithThePreviousOne) {
  MixOptions o;
  o.mixup_alpha = 0.4;
  const Tensor original = batch(3, 2, 4, 5);
  const std::vector<int64_t> labels = {0, 2, 1};
  auto r = train::mix_batch(original, labels, 4, o, 2, 5);
  const Tensor& x = r.images;
  EXPECT_FALSE(r.cutmix);
  const float lam = static_cast<float>(r.lambda), rest = static_cast<float>(1.0 - r.lambda);
  const int64_t s = 2 * 4 * 5;
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < s; ++j)
      ASSERT_EQ(x.f32()[i * s + j],
                original.f32()[i * s + j] * lam + original.f32()[((i + 2) % 3) * s + j] * rest);
  // Targets: lam on the own label, 1 - lam on the previous sample's.
  // labels {0, 2, 1}: sample 0 takes sample 2's label 1, sample 1 sample 0's label 0.
  const std::vector<float> expected = {lam,  rest, 0.f,  0.f,  //
                                       rest, 0.f,  lam,  0.f,  //
                                       0.f,  lam,  rest, 0.f};
  for (size_t k = 0; k < expected.size(); ++k) EXPECT_EQ(r.targets.f32()[k], expected[k]) << k;
  // Dominant label: the own one when lam >= 1/2.
  for (int64_t i = 0; i < 3; ++i)
    EXPECT_EQ(r.dominant_labels[static_cast<size_t>(i)],
              r.lambda >= 0.5 ? labels[static_cast<size_t>(i)]
                              : labels[static_cast<size_t>((i + 2) % 3)]);
}

TEST(Mixup, CutmixPastesOneBoxAndRecomputesLambdaFromIt) {
  MixOptions o;
  o.cutmix_alpha = 1.0;
  for (int64_t b = 0; b < 20; ++b) {
    const Tensor original = batch(4, 3, 9, 13);
    const std::vector<int64_t> labels = {3, 1, 0, 2};
    auto r = train::mix_batch(original, labels, 5, o, 0, b);
    const Tensor& x = r.images;
    EXPECT_TRUE(r.cutmix);
    // The pasted pixels: the same set in every sample and channel, each equal to the
    // previous sample's original; lambda = 1 - their share.
    int64_t pasted = 0;
    const int64_t plane = 9 * 13, s = 3 * plane;
    for (int64_t p = 0; p < plane; ++p) {
      const bool changed = x.f32()[p] != original.f32()[p];
      for (int64_t i = 0; i < 4; ++i)
        for (int64_t c = 0; c < 3; ++c) {
          const int64_t at = i * s + c * plane + p;
          const float partner = original.f32()[((i + 3) % 4) * s + c * plane + p];
          ASSERT_EQ(x.f32()[at], changed ? partner : original.f32()[at]) << b << " " << p;
        }
      pasted += changed ? 1 : 0;
    }
    EXPECT_DOUBLE_EQ(r.lambda, 1.0 - static_cast<double>(pasted) / plane) << b;
    const float* t = r.targets.f32();
    for (int64_t i = 0; i < 4; ++i) {
      float row = 0.f;
      for (int64_t k = 0; k < 5; ++k) row += t[i * 5 + k];
      EXPECT_NEAR(row, 1.f, 1e-6);
      EXPECT_FLOAT_EQ(t[i * 5 + labels[static_cast<size_t>(i)]], static_cast<float>(r.lambda));
    }
  }
}

TEST(Mixup, BothPickOneAtRandomAndAreDeterministic) {
  MixOptions o;
  o.mixup_alpha = 0.2;
  o.cutmix_alpha = 1.0;
  o.seed = 5;
  int cutmix = 0;
  for (int64_t b = 0; b < 400; ++b) {
    const Tensor x = batch(2, 1, 6, 6), before = x.clone();
    auto r1 = train::mix_batch(x, std::vector<int64_t>{0, 1}, 2, o, 3, b);
    auto r2 = train::mix_batch(x, std::vector<int64_t>{0, 1}, 2, o, 3, b);
    ASSERT_EQ(r1.cutmix, r2.cutmix);
    ASSERT_EQ(r1.lambda, r2.lambda);
    ASSERT_EQ(std::memcmp(r1.images.raw(), r2.images.raw(), x.nbytes()), 0);
    ASSERT_EQ(std::memcmp(x.raw(), before.raw(), x.nbytes()), 0);  // the input is kept
    cutmix += r1.cutmix ? 1 : 0;
  }
  EXPECT_NEAR(cutmix, 200, 40);
  // Another epoch or seed mixes differently.
  Tensor a = batch(2, 1, 6, 6), b = batch(2, 1, 6, 6);
  auto ra = train::mix_batch(a, std::vector<int64_t>{0, 1}, 2, o, 3, 0);
  auto rb = train::mix_batch(b, std::vector<int64_t>{0, 1}, 2, o, 4, 0);
  EXPECT_NE(ra.lambda, rb.lambda);
}

TEST(Mixup, RefusesBadInput) {
  MixOptions off;
  Tensor x = batch(2, 1, 4, 4);
  EXPECT_TRAIN_ERROR(train::mix_batch(x, std::vector<int64_t>{0, 1}, 2, off, 0, 0), "alpha");
  MixOptions o;
  o.mixup_alpha = 1.0;
  EXPECT_TRAIN_ERROR(train::mix_batch(x, std::vector<int64_t>{0, 1, 1}, 2, o, 0, 0),
                     "[3, C, H, W]");
  EXPECT_TRAIN_ERROR(train::mix_batch(x, std::vector<int64_t>{0, 2}, 2, o, 0, 0), "label 2");
}

TEST(SoftCrossEntropy, MatchesPyTorchWithAndWithoutLabelSmoothing) {
  const io::SafetensorsFile f = io::read_safetensors(std::string(RESNET_FIXTURE_DIR) +
                                                     "/finetune/soft_cross_entropy.safetensors");
  const Tensor& logits = *f.find("logits");
  const Tensor& targets = *f.find("targets");
  const double smoothing[] = {0.0, 0.1};
  for (int i = 0; i < 2; ++i) {
    auto r = train::cross_entropy_soft(logits, targets, smoothing[i]);
    EXPECT_NEAR(r.loss, f.find("loss")->f32()[i], 1e-6 * std::abs(r.loss)) << i;
    testing::expect_close(r.grad_logits, *f.find("grad." + std::to_string(i)), 1e-6,
                          "grad " + std::to_string(i));
  }
}

TEST(SoftCrossEntropy, OneHotTargetsEqualTheHardLoss) {
  Tensor logits = testing::random_tensor({5, 4}, 3, -4.f, 4.f);
  const std::vector<int64_t> labels = {0, 3, 1, 1, 2};
  Tensor one_hot({5, 4});
  for (int64_t i = 0; i < 5; ++i) one_hot.f32()[i * 4 + labels[static_cast<size_t>(i)]] = 1.f;
  for (double eps : {0.0, 0.2}) {
    auto hard = train::cross_entropy(logits, labels, eps);
    auto soft = train::cross_entropy_soft(logits, one_hot, eps);
    EXPECT_NEAR(hard.loss, soft.loss, 1e-12);
    testing::expect_close(soft.grad_logits, hard.grad_logits, 1e-6, "grad");
  }
  Tensor bad = one_hot.clone();
  bad.f32()[3] = -0.5f;
  EXPECT_TRAIN_ERROR(train::cross_entropy_soft(logits, bad), "[0, 3]", "-0.5");
}

}  // namespace
}  // namespace resnet
