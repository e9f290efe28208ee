#include "resnet/data/rng.h"

#include <numeric>

#include "resnet/core/error.h"

namespace resnet::data {

namespace {

// SplitMix64 (Steele, Lea, Flood 2014): the seeding function its authors recommend for
// xoshiro, so that nearby seeds (epoch 3 and 4) give unrelated states.
uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

}  // namespace

Rng::Rng(uint64_t seed) {
  uint64_t x = seed;
  for (uint64_t& s : s_) s = splitmix64(x);
}

Rng Rng::derive(uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
  // Chain the words through SplitMix64 so that (seed, a, b, c) and any permutation of them
  // hash differently.
  uint64_t x = seed;
  uint64_t h = splitmix64(x);
  for (uint64_t w : {a, b, c}) {
    x = h ^ w;
    h = splitmix64(x);
  }
  return Rng(h);
}

uint64_t Rng::next_u64() {
  // xoshiro256** 1.0 (Blackman, Vigna 2018).
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform() {
  return static_cast<double>(next_u64() >> 11) * 0x1.0p-53;
}

int64_t Rng::randint(int64_t lo, int64_t hi) {
  RESNET_CHECK(lo < hi, "Rng::randint: expected lo < hi, got [" << lo << ", " << hi << ")");
  const uint64_t range = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
  // Reject the top partial bucket so every value has the same probability.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % range;
  uint64_t r = next_u64();
  while (r >= limit) r = next_u64();
  return lo + static_cast<int64_t>(r % range);
}

std::vector<int64_t> random_permutation(int64_t n, Rng& rng) {
  RESNET_CHECK(n >= 0, "random_permutation: expected n >= 0, got " << n);
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  for (int64_t i = n - 1; i > 0; --i) {
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(rng.randint(0, i + 1))]);
  }
  return order;
}

}  // namespace resnet::data
