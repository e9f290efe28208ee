#include <immintrin.h>

#include <cstdint>

#include "bf16_bits.h"
#include "resnet/backend/activation_ops.h"

namespace resnet::backend::detail {

namespace {

// AVX512_BF16's vcvtneps2bf16, 16 values an instruction: what store() computes for each
// value (round to nearest even, denormals to signed zero, NaN quiet), in one instruction
// where the formula, vectorized, takes a few dozen. Compiled for that instruction set
// alone; called only where the CPU has it.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) void round_native(const float* src,
                                                                                  uint16_t* dst,
                                                                                  int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(src + i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), reinterpret_cast<const __m256i&>(h));
  }
  if (i < n) {
    const __mmask16 tail = static_cast<__mmask16>((1u << (n - i)) - 1u);
    const __m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(tail, src + i));
    _mm256_mask_storeu_epi16(dst + i, tail, reinterpret_cast<const __m256i&>(h));
  }
}

}  // namespace

void round_to_bf16(const float* src, uint16_t* dst, int64_t n) {
  static const bool native = cpu_has_native_bf16();
  if (native) return round_native(src, dst, n);
  for (int64_t i = 0; i < n; ++i) store(dst, i, src[i]);
}

}  // namespace resnet::backend::detail
