#include "resnet/train/mixup.h"

#include <cmath>
#include <numbers>

#include <algorithm>
#include "resnet/core/error.h"
#include "resnet/data/rng.h"

namespace resnet::train {

namespace {

// The stream of batch mixing, beside the loader's order (1) and sample (2) streams.
constexpr uint64_t kMixStream = 3;

double standard_normal(data::Rng& rng) {
  // Box-Muller; 1 - uniform() is in (0, 1], so the log is finite.
  const double u = 1.0 - rng.uniform(), v = rng.uniform();
  return std::sqrt(-2.0 * std::log(u)) * std::cos(2.0 * std::numbers::pi * v);
}

// Gamma(shape, 1) by Marsaglia and Tsang (2000); shape < 1 through Gamma(shape + 1)
// times U^(1/shape).
double gamma_variate(double shape, data::Rng& rng) {
  if (shape < 1.0) {
    const double u = 1.0 - rng.uniform();
    return gamma_variate(shape + 1.0, rng) * std::pow(u, 1.0 / shape);
  }
  const double d = shape - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    double x, v;
    do {
      x = standard_normal(rng);
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    const double u = 1.0 - rng.uniform();
    if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) return d * v;
  }
}

double beta_from(double alpha, data::Rng& rng) {
  const double x = gamma_variate(alpha, rng), y = gamma_variate(alpha, rng);
  return x + y > 0.0 ? x / (x + y) : 0.5;
}

}  // namespace

double sample_symmetric_beta(double alpha, uint64_t seed, uint64_t epoch, uint64_t batch) {
  RESNET_CHECK(alpha > 0.0 && std::isfinite(alpha),
               "mix: expected a positive alpha, got " << alpha);
  data::Rng rng = data::Rng::derive(seed, epoch, kMixStream, batch);
  return beta_from(alpha, rng);
}

MixResult mix_batch(const Tensor& images, std::span<const int64_t> labels, int64_t num_classes,
                    const MixOptions& options, int64_t epoch, int64_t batch) {
  RESNET_CHECK(options.mixup_alpha >= 0.0 && options.cutmix_alpha >= 0.0 && options.enabled(),
               "mix: expected --mixup and --cutmix alphas >= 0, one of them positive, got "
                   << options.mixup_alpha << " and " << options.cutmix_alpha);
  RESNET_CHECK(images.rank() == 4 && images.dtype() == DType::f32 &&
                   images.layout() == Layout::plain &&
                   images.dim(0) == static_cast<int64_t>(labels.size()),
               "mix: expected plain f32 images [" << labels.size() << ", C, H, W], got "
                                                  << images.shape_str());
  const int64_t n = images.dim(0), c = images.dim(1), h = images.dim(2), w = images.dim(3);
  for (size_t i = 0; i < labels.size(); ++i)
    RESNET_CHECK(labels[i] >= 0 && labels[i] < num_classes,
                 "mix: label " << labels[i] << " of sample " << i << " is not in [0, "
                               << num_classes << ")");

  data::Rng rng = data::Rng::derive(options.seed, static_cast<uint64_t>(epoch), kMixStream,
                                    static_cast<uint64_t>(batch));
  MixResult r;
  r.cutmix = options.mixup_alpha <= 0.0 || (options.cutmix_alpha > 0.0 && rng.bernoulli(0.5));
  const double lambda = beta_from(r.cutmix ? options.cutmix_alpha : options.mixup_alpha, rng);
  const int64_t plane = h * w, sample = c * plane;
  // Every sample reads its partner from the batch as it came.
  r.images = images.clone();
  const float* o = images.f32();
  float* x = r.images.f32();
  if (!r.cutmix) {
    // Rounded as PyTorch's f32 x.mul(lambda).add_(rolled.mul_(1 - lambda)).
    const auto lam = static_cast<float>(lambda), rest = static_cast<float>(1.0 - lambda);
    for (int64_t i = 0; i < n; ++i) {
      const float* partner = o + ((i + n - 1) % n) * sample;
      for (int64_t j = 0; j < sample; ++j)
        x[i * sample + j] = o[i * sample + j] * lam + partner[j] * rest;
    }
    r.lambda = lambda;
  } else {
    const int64_t rx = rng.randint(0, w), ry = rng.randint(0, h);
    const double half = 0.5 * std::sqrt(1.0 - lambda);
    const auto half_w = static_cast<int64_t>(half * static_cast<double>(w));
    const auto half_h = static_cast<int64_t>(half * static_cast<double>(h));
    const int64_t x1 = std::max<int64_t>(rx - half_w, 0), y1 = std::max<int64_t>(ry - half_h, 0);
    const int64_t x2 = std::min<int64_t>(rx + half_w, w), y2 = std::min<int64_t>(ry + half_h, h);
    for (int64_t i = 0; i < n; ++i) {
      const float* partner = o + ((i + n - 1) % n) * sample;
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t y = y1; y < y2; ++y)
          for (int64_t xx = x1; xx < x2; ++xx) {
            const int64_t at = ch * plane + y * w + xx;
            x[i * sample + at] = partner[at];
          }
    }
    r.lambda = 1.0 - static_cast<double>((x2 - x1) * (y2 - y1)) / static_cast<double>(w * h);
  }

  r.targets = Tensor({n, num_classes});
  float* t = r.targets.f32();
  const auto own = static_cast<float>(r.lambda), other = static_cast<float>(1.0 - r.lambda);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t partner = labels[static_cast<size_t>((i + n - 1) % n)];
    t[i * num_classes + labels[static_cast<size_t>(i)]] += own;
    t[i * num_classes + partner] += other;
    r.dominant_labels.push_back(r.lambda >= 0.5 ? labels[static_cast<size_t>(i)] : partner);
  }
  return r;
}

}  // namespace resnet::train
