#include "resnet/core/fma_peak.h"

#include <immintrin.h>
#include <omp.h>

#include <chrono>
#include <vector>

namespace resnet {

namespace {

// Independent accumulators hide the FMA latency (4 cycles, 2 ports: at least 8 chains).
constexpr int kChains = 12;

// Explicit FMA intrinsics: with ISO C++ (no fp-contract) a * b + c would compile to a
// multiply and an add, half the peak.
__attribute__((target("avx512f"))) double fma_loop_avx512(long iterations) {
  __m512 acc[kChains];
  const __m512 a = _mm512_set1_ps(1.0000001f), b = _mm512_set1_ps(0.9999999f);
  for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(static_cast<float>(c));
  for (long i = 0; i < iterations; ++i)
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
  alignas(64) float lanes[16];
  float sum = 0;
  for (int c = 0; c < kChains; ++c) {
    _mm512_store_ps(lanes, acc[c]);
    for (float v : lanes) sum += v;
  }
  return sum;  // returned so that the loop is not optimized away
}

__attribute__((target("avx2,fma"))) double fma_loop_avx2(long iterations) {
  __m256 acc[kChains];
  const __m256 a = _mm256_set1_ps(1.0000001f), b = _mm256_set1_ps(0.9999999f);
  for (int c = 0; c < kChains; ++c) acc[c] = _mm256_set1_ps(static_cast<float>(c));
  for (long i = 0; i < iterations; ++i)
    for (int c = 0; c < kChains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
  alignas(32) float lanes[8];
  float sum = 0;
  for (int c = 0; c < kChains; ++c) {
    _mm256_store_ps(lanes, acc[c]);
    for (float v : lanes) sum += v;
  }
  return sum;
}

double run_loop(long n, int& lanes) {
  if (__builtin_cpu_supports("avx512f")) {
    lanes = 16;
    return fma_loop_avx512(n);
  }
  lanes = 8;
  return fma_loop_avx2(n);
}

}  // namespace

double measure_fma_peak_gflops(int threads, double seconds) {
  const long iterations = 1 << 20;
  int lanes = 8;
  volatile double sink = run_loop(1 << 12, lanes);  // warm up, pick the width
  std::vector<double> sinks(threads);
  long rounds = 0;
  auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  do {
#pragma omp parallel num_threads(threads)
    {
      int l = 0;
      sinks[omp_get_thread_num()] += run_loop(iterations, l);
    }
    ++rounds;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (elapsed < seconds);
  sink = sink + sinks[0];
  const double flops = 2.0 * kChains * lanes * static_cast<double>(iterations) *
                       static_cast<double>(rounds) * threads;
  return flops / elapsed * 1e-9;
}

}  // namespace resnet
