#pragma once
// bf16 values as our own loops read and write them: their bit patterns (uint16_t), the top
// half of the f32. Loads widen exactly; stores round to nearest even, as oneDNN's
// conversion does on this hardware (AVX512_BF16's vcvtneps2bf16), so a tensor these loops
// write in bf16 holds exactly what a reorder of its f32 values would: denormals become zero
// of their sign, and a NaN stays a (quiet) NaN. Used by batch norm (its bf16 outputs and
// input gradients) and by the residual add's bf16 rounding (relu_mask.cpp).

#include <bit>
#include <cstdint>

namespace resnet::backend::detail {

inline float load(const float* p, int64_t i) {
  return p[i];
}
inline float load(const uint16_t* p, int64_t i) {
  return std::bit_cast<float>(static_cast<uint32_t>(p[i]) << 16);
}
inline void store(float* p, int64_t i, float v) {
  p[i] = v;
}
inline void store(uint16_t* p, int64_t i, float v) {
  const uint32_t u = std::bit_cast<uint32_t>(v);
  const uint32_t magnitude = u & 0x7fffffffu;
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const uint32_t flushed = (u >> 16) & 0x8000u;
  const uint32_t nan = (u >> 16) | 0x40u;
  p[i] = static_cast<uint16_t>(magnitude > 0x7f800000u   ? nan
                               : magnitude < 0x00800000u ? flushed
                                                         : rounded);
}

// dst[i] = the bf16 rounding of src[i] for i < n, bit for bit what store() writes: with
// AVX512_BF16's conversion instruction where the CPU has it (bf16_round.cpp). For runs a
// loop has just written in f32 (a chunk in L1): far cheaper than store() per value.
void round_to_bf16(const float* src, uint16_t* dst, int64_t n);

}  // namespace resnet::backend::detail
