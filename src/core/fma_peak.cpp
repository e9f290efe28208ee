#include "resnet/core/fma_peak.h"

#include <omp.h>

#include <chrono>
#include <vector>

namespace resnet {

namespace {

// Independent accumulators hide the FMA latency (4 cycles, 2 ports: at least 8 chains).
constexpr int kChains = 12;

typedef float Vec16 __attribute__((vector_size(64)));
typedef float Vec8 __attribute__((vector_size(32)));

template <typename Vec, int Lanes>
inline double fma_loop(long iterations) {
  Vec acc[kChains];
  Vec a, b;
  for (int l = 0; l < Lanes; ++l) a[l] = 1.0000001f, b[l] = 0.9999999f;
  for (int c = 0; c < kChains; ++c) acc[c] = a * static_cast<float>(c);
  for (long i = 0; i < iterations; ++i)
    for (int c = 0; c < kChains; ++c) acc[c] = acc[c] * a + b;
  float sum = 0;
  for (int c = 0; c < kChains; ++c)
    for (int l = 0; l < Lanes; ++l) sum += acc[c][l];
  return sum;  // returned so that the loop is not optimized away
}

__attribute__((target("avx512f"))) double fma_loop_avx512(long n) {
  return fma_loop<Vec16, 16>(n);
}
__attribute__((target("avx2,fma"))) double fma_loop_avx2(long n) {
  return fma_loop<Vec8, 8>(n);
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
