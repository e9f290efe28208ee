#include "resnet/backend/relu_mask.h"

#include <cstdint>

#include "bf16_bits.h"
#include "hot_loop.h"
#include "resnet/core/error.h"
#include "thread_count.h"

namespace resnet::backend {

namespace {

// Stored values: a blocked16 tensor's padding channels (zeros) included.
int64_t stored_values(const Tensor& t) {
  return static_cast<int64_t>(t.nbytes() / sizeof(float));
}

// Eight values to a byte; parallel over bytes of 64 values so each thread writes whole
// cache lines of the mask.
RESNET_HOT_LOOP void pack_positive(const float* y, uint8_t* bits, int64_t n) {
  const int64_t full = n / 8;
  detail::adopt_thread_count();
#pragma omp parallel for schedule(static)
  for (int64_t j = 0; j < full; ++j) {
    uint8_t b = 0;
    for (int k = 0; k < 8; ++k) b |= static_cast<uint8_t>((y[8 * j + k] > 0.f) << k);
    bits[j] = b;
  }
  if (n % 8 != 0) {
    uint8_t b = 0;
    for (int64_t k = 0; 8 * full + k < n; ++k)
      b |= static_cast<uint8_t>((y[8 * full + k] > 0.f) << k);
    bits[full] = b;
  }
}

RESNET_HOT_LOOP void masked_copy(const float* dy, const uint8_t* bits, float* dx, int64_t n) {
  detail::adopt_thread_count();
#pragma omp parallel for schedule(static)
  for (int64_t j = 0; j < (n + 7) / 8; ++j) {
    const uint8_t b = bits[j];
    const int64_t end = 8 * j + 8 < n ? 8 : n - 8 * j;
    // A multiply, as oneDNN's ReLU backward does: a negative gradient masked off is -0.
    for (int64_t k = 0; k < end; ++k)
      dx[8 * j + k] = dy[8 * j + k] * static_cast<float>((b >> k) & 1);
  }
}

// out = relu(a + b), its mask, and (kRound) its bf16 rounding, in one pass over chunks of
// 4096 values: the sums first (a loop that vectorizes), then the chunk's mask bytes from
// the values just written, still in L1/L2. The ReLU is max(s, 0) as oneDNN's add with a
// ReLU post-op computes it (measured): a negative sum gives +0, and so does a NaN.
template <bool kRound>
RESNET_HOT_LOOP_TEMPLATE void add_relu_pack(const float* a, const float* b, float* out,
                                            uint16_t* out16, uint8_t* bits, int64_t n) {
  constexpr int64_t kChunk = 4096;  // a multiple of 8: every chunk but the last fills whole bytes
  detail::adopt_thread_count();
#pragma omp parallel for schedule(static)
  for (int64_t chunk = 0; chunk < (n + kChunk - 1) / kChunk; ++chunk) {
    const int64_t begin = chunk * kChunk;
    const int64_t end = begin + kChunk < n ? begin + kChunk : n;
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      const float s = a[i] + b[i];
      const float y = s > 0.f ? s : 0.f;
      out[i] = y;
    }
    if constexpr (kRound) detail::round_to_bf16(out + begin, out16 + begin, end - begin);
    for (int64_t j = begin / 8; j < end / 8; ++j) {
      uint8_t m = 0;
      for (int k = 0; k < 8; ++k) m |= static_cast<uint8_t>((out[8 * j + k] > 0.f) << k);
      bits[j] = m;
    }
    if (end % 8 != 0) {
      uint8_t m = 0;
      for (int64_t i = end / 8 * 8; i < end; ++i)
        m |= static_cast<uint8_t>((out[i] > 0.f) << (i % 8));
      bits[end / 8] = m;
    }
  }
}

}  // namespace

MaskedSum add_relu_masked(const Tensor& a, const Tensor& b, bool bf16_rounding) {
  RESNET_CHECK(a.dtype() == DType::f32 && b.dtype() == DType::f32 && a.shape() == b.shape() &&
                   a.layout() == b.layout(),
               "add+ReLU: expected f32 operands of one shape and layout, got "
                   << dtype_name(a.dtype()) << a.shape_str() << " " << layout_name(a.layout())
                   << " and " << dtype_name(b.dtype()) << b.shape_str() << " "
                   << layout_name(b.layout()));
  const int64_t n = stored_values(a);
  MaskedSum sum{Tensor::empty(a.shape(), DType::f32, a.layout()),
                ReluMask{Tensor::empty({(n + 7) / 8}, DType::u8), a.shape(), a.layout()}};
  auto* bits = static_cast<uint8_t*>(sum.mask.bits.raw());
  // Element-wise over the storage, so any layout both share; the rounding only in the
  // layouts a convolution's own conversion writes (activation_convert: plain, blocked16).
  if (!bf16_rounding || (a.layout() != Layout::plain && a.layout() != Layout::blocked16)) {
    add_relu_pack<false>(a.f32(), b.f32(), sum.out.f32(), nullptr, bits, n);
    return sum;
  }
  Tensor rounded = Tensor::empty(a.shape(), DType::bf16, a.layout());
  add_relu_pack<true>(a.f32(), b.f32(), sum.out.f32(), static_cast<uint16_t*>(rounded.raw()), bits,
                      n);
  sum.out.attach_rounded(std::move(rounded));
  return sum;
}

ReluMask relu_mask(const Tensor& dst) {
  RESNET_CHECK(dst.dtype() == DType::f32,
               "ReLU mask: expected an f32 output, got " << dtype_name(dst.dtype()));
  const int64_t n = stored_values(dst);
  ReluMask mask{Tensor({(n + 7) / 8}, DType::u8), dst.shape(), dst.layout()};
  pack_positive(dst.f32(), static_cast<uint8_t*>(mask.bits.raw()), n);
  return mask;
}

Tensor relu_backward(const Tensor& diff_dst, const ReluMask& mask) {
  RESNET_CHECK(mask.defined() && diff_dst.dtype() == DType::f32 && diff_dst.shape() == mask.shape &&
                   diff_dst.layout() == mask.layout,
               "ReLU backward: expected an f32 gradient of " << shape_str(mask.shape) << " in the "
                                                             << "forward's layout, got "
                                                             << diff_dst.shape_str());
  Tensor diff_src = Tensor::empty(mask.shape, DType::f32, mask.layout);
  masked_copy(diff_dst.f32(), static_cast<const uint8_t*>(mask.bits.raw()), diff_src.f32(),
              stored_values(diff_src));
  return diff_src;
}

}  // namespace resnet::backend
