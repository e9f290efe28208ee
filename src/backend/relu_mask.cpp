#include "resnet/backend/relu_mask.h"

#include <cstdint>

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

}  // namespace

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
