#pragma once
// Rng: the one random generator of the data layer (xoshiro256**, seeded through SplitMix64).
//
// Every draw is defined here bit for bit, including the integer and real distributions, so
// shuffles and augmentations are the same on every compiler and standard library
// (std::uniform_int_distribution and std::shuffle are implementation-defined).
//
// Streams used by the loader (see loader.h):
//   order of epoch e:         Rng::derive(seed, e, kOrderStream)
//   augmentation of sample i: Rng::derive(seed, e, kSampleStream, i)   (i = dataset index)
// and by the held-out split (subset.h): Rng::derive(seed, kValSplitStream).

#include <cstdint>
#include <vector>

namespace resnet::data {

class Rng {
 public:
  static constexpr uint64_t kOrderStream = 1;
  static constexpr uint64_t kSampleStream = 2;
  static constexpr uint64_t kValSplitStream = 3;

  explicit Rng(uint64_t seed);
  // A generator whose state is a hash of all the words given; different words give
  // independent-looking streams.
  static Rng derive(uint64_t seed, uint64_t a, uint64_t b = 0, uint64_t c = 0);

  uint64_t next_u64();
  // Uniform in [0, 1), 53 random bits.
  double uniform();
  // Uniform in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [lo, hi); requires lo < hi. Unbiased (rejection sampling).
  int64_t randint(int64_t lo, int64_t hi);
  // True with probability p (uniform() < p, as torch.rand(1) < p).
  bool bernoulli(double p) { return uniform() < p; }

 private:
  uint64_t s_[4];
};

// A uniformly random permutation of 0..n-1 (Fisher-Yates driven by `rng`).
std::vector<int64_t> random_permutation(int64_t n, Rng& rng);

}  // namespace resnet::data
