#pragma once
// Measures this machine's f32 fused multiply-add peak, so that benchmarks can say what
// fraction of it they reach: a short loop of independent vector FMAs on every thread.

namespace resnet {

// GFLOPS (1 FMA = 2 FLOP) over `threads` threads, timed for about `seconds`.
double measure_fma_peak_gflops(int threads, double seconds = 0.2);

}  // namespace resnet
