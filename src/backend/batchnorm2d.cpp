#include "resnet/backend/batchnorm2d.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "bf16_bits.h"
#include "hot_loop.h"
#include "plan_cache.h"
#include "resnet/backend/activation_ops.h"
#include "resnet/backend/eltwise.h"
#include "thread_count.h"

namespace resnet::backend {

using namespace detail;

namespace {

// Where channel c's values sit: for every image n, `run` consecutive positions starting at
// offset(n, c), `step` floats apart. Plain: (n*C + c)*HW, step 1. Blocked16:
// ((n*CB + c/16)*HW)*16 + c%16, step 16.
struct ChannelWalk {
  int64_t n, c, hw;
  bool blocked;
  int64_t c_padded() const { return blocked ? (c + 15) / 16 * 16 : c; }
  explicit ChannelWalk(const Tensor& t)
      : n(t.dim(0)),
        c(t.dim(1)),
        hw(t.dim(2) * t.dim(3)),
        blocked(t.layout() == Layout::blocked16) {}
};

// Per-channel sums (in double) of two terms per element: with dy null, of x and x^2;
// otherwise of g and g * (x - m[c]), where g is dy masked by y > 0 when y is given.
// Parallel over images with one accumulator row per thread; channels are visited so
// that memory is read in order, and the 16 lanes of a block vectorize.
// Memory-bound: RESNET_HOT_LOOP_TEMPLATE clones (hot_loop.h), one set per element type.
template <typename X, typename DY, typename Mask>
RESNET_HOT_LOOP_TEMPLATE std::vector<double> channel_sums_body(const ChannelWalk& w, const X* x,
                                                               const DY* dy, const Mask* y,
                                                               const float* m) {
  const int64_t cp = w.c_padded();
  const int threads = adopt_thread_count();
  std::vector<double> partial(static_cast<size_t>(threads) * 2 * cp, 0.0);
#pragma omp parallel
  {
    double* acc = partial.data() + static_cast<size_t>(omp_get_thread_num()) * 2 * cp;
    const int64_t rows = w.blocked ? cp / 16 : w.c;  // channel blocks, or channels
    const int64_t lanes = w.blocked ? 16 : 1;
#pragma omp for schedule(static)
    for (int64_t b = 0; b < w.n; ++b) {
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t base = (b * rows + r) * w.hw * lanes;
        if (lanes == 16) {
          double s0[16] = {}, s1[16] = {};
          for (int64_t i = 0; i < w.hw; ++i) {
            const int64_t o = base + i * 16;
            if (dy == nullptr) {
#pragma omp simd
              for (int l = 0; l < 16; ++l) {
                const double xv = load(x, o + l);
                s0[l] += xv;
                s1[l] += xv * xv;
              }
            } else if (y == nullptr) {
#pragma omp simd
              for (int l = 0; l < 16; ++l) {
                const double g = load(dy, o + l);
                s0[l] += g;
                s1[l] += g * static_cast<double>(load(x, o + l) - m[r * 16 + l]);
              }
            } else {
              // Masked by the fused ReLU's output; selecting in float keeps it one vector op.
#pragma omp simd
              for (int l = 0; l < 16; ++l) {
                // A multiply by the 0/1 mask rather than a select: GCC vectorizes this one.
                const float gf = load(dy, o + l) * static_cast<float>(load(y, o + l) > 0.f);
                const double g = gf;
                s0[l] += g;
                s1[l] += g * static_cast<double>(load(x, o + l) - m[r * 16 + l]);
              }
            }
          }
          for (int l = 0; l < 16; ++l) {
            acc[r * 16 + l] += s0[l];
            acc[cp + r * 16 + l] += s1[l];
          }
        } else {
          double a0 = 0.0, a1 = 0.0;
          if (dy == nullptr) {
#pragma omp simd reduction(+ : a0, a1)
            for (int64_t i = 0; i < w.hw; ++i) {
              const double xv = load(x, base + i);
              a0 += xv;
              a1 += xv * xv;
            }
          } else {
            const double mc = m[r];
#pragma omp simd reduction(+ : a0, a1)
            for (int64_t i = 0; i < w.hw; ++i) {
              const float d = load(dy, base + i);
              const double g = (y == nullptr || load(y, base + i) > 0.f) ? d : 0.f;
              a0 += g;
              a1 += g * (load(x, base + i) - mc);
            }
          }
          acc[r] += a0;
          acc[cp + r] += a1;
        }
      }
    }
  }
  std::vector<double> total(static_cast<size_t>(2 * cp), 0.0);
  for (int t = 0; t < threads; ++t)
    for (size_t j = 0; j < total.size(); ++j) total[j] += partial[t * total.size() + j];
  return total;
}

// Calls f with t's values as `const float*` or, for bf16, `const uint16_t*` (its bit
// patterns); an undefined tensor is a null `const float*`.
template <typename F>
decltype(auto) with_values(const Tensor& t, F f) {
  if (t.defined() && t.dtype() == DType::bf16) return f(static_cast<const uint16_t*>(t.raw()));
  return f(t.defined() ? t.f32() : static_cast<const float*>(nullptr));
}

// The input x, the output gradient dy (undefined in forward) and the mask (the fused
// ReLU's output, when defined), each in f32 or bf16.
std::vector<double> channel_sums(const ChannelWalk& w, const Tensor& x, const Tensor& dy,
                                 const Tensor& mask, const float* m) {
  return with_values(x, [&](auto xp) {
    return with_values(dy, [&](auto dp) {
      return with_values(mask, [&](auto yp) { return channel_sums_body(w, xp, dp, yp, m); });
    });
  });
}

// out = a[c] * g + b[c] + k[c] * (x - m[c]) for every element, g being dy masked by
// y > 0 when y is given. With dy null it is the forward's out = x * a[c] + b[c], clamped
// at 0 when relu. Parallel over images; vectorizes over positions or lanes. A bf16 `out`
// is written through an f32 chunk in L1, rounded by round_to_bf16 (one instruction per
// 16 values where the CPU has AVX512_BF16) rather than value by value.
template <typename Out, typename X, typename DY, typename Mask>
RESNET_HOT_LOOP_TEMPLATE void channel_affine_body(const ChannelWalk& w, Out* out, const X* x,
                                                  const DY* dy, const Mask* y, const float* a,
                                                  const float* b, const float* k, const float* m,
                                                  bool relu) {
  constexpr int64_t kChunk = 2048;  // values: 8 KiB of f32, a multiple of 16
  const int64_t cp = w.c_padded();
  const int64_t rows = w.blocked ? cp / 16 : w.c;
  const int64_t lanes = w.blocked ? 16 : 1;
  const int64_t chunk_pixels = kChunk / lanes;
  adopt_thread_count();
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < w.n; ++n) {
    alignas(64) float staged[kChunk];
    for (int64_t r = 0; r < rows; ++r) {
      const float* pa = a + r * lanes;
      const float* pb = b + r * lanes;
      const float* pk = k == nullptr ? nullptr : k + r * lanes;
      const float* pm = m == nullptr ? nullptr : m + r * lanes;
      for (int64_t p0 = 0; p0 < w.hw; p0 += chunk_pixels) {
        const int64_t p1 = std::min(w.hw, p0 + chunk_pixels);
        const int64_t base = ((n * rows + r) * w.hw + p0) * lanes;  // the chunk's first value
        float* to = nullptr;
        if constexpr (std::is_same_v<Out, float>)
          to = out + base;
        else
          to = staged;
        if (lanes == 16) {
          for (int64_t i = 0; i < p1 - p0; ++i) {
            const int64_t o = base + i * 16;
            float* t = to + i * 16;
            if (dy == nullptr) {
#pragma omp simd
              for (int l = 0; l < 16; ++l) {
                const float v = load(x, o + l) * pa[l] + pb[l];
                t[l] = relu ? std::max(0.f, v) : v;
              }
            } else {
#pragma omp simd
              for (int l = 0; l < 16; ++l) {
                const float d = load(dy, o + l);
                const float g = (y == nullptr || load(y, o + l) > 0.f) ? d : 0.f;
                t[l] = pa[l] * g + pb[l] + pk[l] * (load(x, o + l) - pm[l]);
              }
            }
          }
        } else if (dy == nullptr) {
          const float sa = pa[0], sb = pb[0];
#pragma omp simd
          for (int64_t i = 0; i < p1 - p0; ++i) {
            const float v = load(x, base + i) * sa + sb;
            to[i] = relu ? std::max(0.f, v) : v;
          }
        } else {
          const float sa = pa[0], sb = pb[0], sk = pk[0], sm = pm[0];
#pragma omp simd
          for (int64_t i = 0; i < p1 - p0; ++i) {
            const float d = load(dy, base + i);
            const float g = (y == nullptr || load(y, base + i) > 0.f) ? d : 0.f;
            to[i] = sa * g + sb + sk * (load(x, base + i) - sm);
          }
        }
        if constexpr (!std::is_same_v<Out, float>)
          round_to_bf16(staged, out + base, (p1 - p0) * lanes);
      }
    }
  }
}

// out = channel_affine_body(...) into `out` (f32 or bf16), from x and dy (undefined in
// forward), masked by `mask` when it is defined; each in f32 or bf16.
void channel_affine(const ChannelWalk& w, Tensor& out, const Tensor& x, const Tensor& dy,
                    const Tensor& mask, const float* a, const float* b, const float* k,
                    const float* m, bool relu) {
  with_values(x, [&](auto xp) {
    with_values(dy, [&](auto dp) {
      with_values(mask, [&](auto yp) {
        if (out.dtype() == DType::bf16)
          channel_affine_body(w, static_cast<uint16_t*>(out.raw()), xp, dp, yp, a, b, k, m, relu);
        else
          channel_affine_body(w, out.f32(), xp, dp, yp, a, b, k, m, relu);
      });
    });
  });
}

// Per-channel arrays padded to c_padded with neutral values, so blocked padding
// channels compute zeros.
// Sums the channel sums (2 * cp values, the first c of each half real) and `count` over the
// ranks; the layout (plain or blocked) may differ between ranks, so only the c real
// channels travel.
void reduce_channel_sums(const ChannelSumReducer& reduce, std::vector<double>& sums, int64_t c,
                         int64_t cp, double& count) {
  std::vector<double> packed(static_cast<size_t>(2 * c + 1));
  std::copy_n(sums.begin(), c, packed.begin());
  std::copy_n(sums.begin() + cp, c, packed.begin() + c);
  packed.back() = count;
  reduce(std::span(packed));
  std::copy_n(packed.begin(), c, sums.begin());
  std::copy_n(packed.begin() + c, c, sums.begin() + cp);
  count = packed.back();
}

std::vector<float> padded(const Tensor& t, int64_t cp, float fill) {
  std::vector<float> v(static_cast<size_t>(cp), fill);
  std::copy(t.f32(), t.f32() + t.numel(), v.begin());
  return v;
}

// Training-mode inputs are f32, or bf16 where a mixed-precision convolution wrote them.
const Tensor& checked_input(const Tensor& src) {
  RESNET_CHECK(src.dtype() == DType::f32 || src.dtype() == DType::bf16,
               "BatchNorm2d: expected an f32 or bf16 input, got " << dtype_name(src.dtype()));
  return src;
}

DType checked_out_type(DType t) {
  RESNET_CHECK(t == DType::f32 || t == DType::bf16,
               "BatchNorm2d: expected an f32 or bf16 output, asked for " << dtype_name(t));
  return t;
}

}  // namespace

struct BatchNorm2dKernel::Impl {
  double eps;
  PlanCache<dnnl::batch_normalization_forward> eval_plans;

  dnnl::batch_normalization_forward& eval_plan(const Tensor& src, bool relu) {
    return eval_plans.get(PlanKey(desc_of(src), relu), [&] {
      auto flags = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift |
                   dnnl::normalization_flags::use_global_stats;
      if (relu) flags = flags | dnnl::normalization_flags::fuse_norm_relu;
      dnnl::batch_normalization_forward::desc d(dnnl::prop_kind::forward_inference, desc_of(src),
                                                static_cast<float>(eps), flags);
      return dnnl::batch_normalization_forward({d, with_user_scratchpad(), engine()});
    });
  }
};

BatchNorm2dKernel::BatchNorm2dKernel(double eps) : impl_(std::make_unique<Impl>()) {
  impl_->eps = eps;
}
BatchNorm2dKernel::~BatchNorm2dKernel() = default;

Tensor BatchNorm2dKernel::forward_train(const Tensor& src, const Tensor& weight, const Tensor& bias,
                                        Tensor& batch_mean, Tensor& batch_var, bool relu,
                                        BatchNormAffine* affine, DType out_type) {
  const ChannelWalk w(src);
  const int64_t cp = w.c_padded();
  double count = static_cast<double>(w.n * w.hw);
  checked_input(src);
  // One pass for both sums: in double, E[x^2] - E[x]^2 keeps ~1e-8 relative accuracy
  // even for means 1e4 times the standard deviation.
  std::vector<double> sums = channel_sums(w, src, Tensor(), Tensor(), nullptr);
  if (reducer_) reduce_channel_sums(reducer_, sums, w.c, cp, count);
  last_train_count_ = count;
  std::vector<float> scale(static_cast<size_t>(cp), 0.f), shift(static_cast<size_t>(cp), 0.f);
  const std::vector<float> gamma = padded(weight, cp, 0.f), beta = padded(bias, cp, 0.f);
  for (int64_t c = 0; c < w.c; ++c) {
    const double mean = sums[c] / count;
    const double var = std::max(0.0, sums[cp + c] / count - mean * mean);
    const double invstd = 1.0 / std::sqrt(var + impl_->eps);
    scale[c] = static_cast<float>(gamma[c] * invstd);
    shift[c] = static_cast<float>(beta[c] - mean * gamma[c] * invstd);
    batch_mean.f32()[c] = static_cast<float>(mean);
    batch_var.f32()[c] = static_cast<float>(var);
  }
  Tensor dst = Tensor::empty(src.shape(), checked_out_type(out_type), src.layout());
  channel_affine(w, dst, src, Tensor(), Tensor(), scale.data(), shift.data(), nullptr, nullptr,
                 relu);
  if (affine != nullptr) *affine = {std::move(scale), std::move(shift)};
  return dst;
}

Tensor BatchNorm2dKernel::apply(const Tensor& src, const BatchNormAffine& affine, bool relu,
                                DType out_type) const {
  const ChannelWalk w(src);
  RESNET_CHECK(affine.scale.size() == static_cast<size_t>(w.c_padded()) &&
                   affine.shift.size() == affine.scale.size(),
               "BatchNorm2d: expected a map of " << w.c_padded() << " channels for input "
                                                 << src.shape_str() << ", got "
                                                 << affine.scale.size());
  Tensor dst = Tensor::empty(src.shape(), checked_out_type(out_type), src.layout());
  // The very loop forward_train ran, on the same values: the same output.
  channel_affine(w, dst, checked_input(src), Tensor(), Tensor(), affine.scale.data(),
                 affine.shift.data(), nullptr, nullptr, relu);
  return dst;
}

Tensor BatchNorm2dKernel::forward_eval(const Tensor& src, const Tensor& weight, const Tensor& bias,
                                       const Tensor& mean, const Tensor& var, bool relu) {
  return guarded("BatchNorm2d forward", [&] {
    // oneDNN's batch norm writes the type it reads; a bf16 input (a mixed-precision
    // convolution's output, in a frozen BN) is widened first.
    const Tensor x =
        checked_input(src).dtype() == DType::f32
            ? src
            : activation_convert(src, 1.f, DType::f32, src.layout() == Layout::blocked16);
    Tensor dst = Tensor::empty(x.shape(), DType::f32, x.layout());
    execute(impl_->eval_plan(x, relu), {{DNNL_ARG_SRC, wrap(x)},
                                        {DNNL_ARG_DST, wrap(dst)},
                                        {DNNL_ARG_SCALE, wrap(weight)},
                                        {DNNL_ARG_SHIFT, wrap(bias)},
                                        {DNNL_ARG_MEAN, wrap(mean)},
                                        {DNNL_ARG_VARIANCE, wrap(var)}});
    return dst;
  });
}

Tensor BatchNorm2dKernel::backward(const Tensor& diff_dst, const Tensor& src, const Tensor& weight,
                                   const Tensor& mean, const Tensor& var, bool use_global_stats,
                                   Tensor& diff_weight, Tensor& diff_bias, const Tensor& relu_dst,
                                   DType grad_type) {
  RESNET_CHECK(diff_dst.shape() == src.shape() && diff_dst.layout() == src.layout(),
               "BatchNorm2d: expected the output gradient in the input's shape and layout, got "
                   << diff_dst.shape_str());
  const ChannelWalk w(src);
  const int64_t cp = w.c_padded();
  double count = static_cast<double>(w.n * w.hw);
  checked_input(src);
  RESNET_CHECK(
      diff_dst.dtype() == DType::f32 || diff_dst.dtype() == DType::bf16,
      "BatchNorm2d: expected an f32 or bf16 output gradient, got " << dtype_name(diff_dst.dtype()));
  RESNET_CHECK(!relu_dst.defined() ||
                   (relu_dst.shape() == src.shape() && relu_dst.layout() == src.layout() &&
                    (relu_dst.dtype() == DType::f32 || relu_dst.dtype() == DType::bf16)),
               "BatchNorm2d: expected the ReLU's output in the input's shape and layout, f32 or "
               "bf16, got "
                   << relu_dst.shape_str());
  const std::vector<float> mu = padded(mean, cp, 0.f);
  const float* m = mu.data();
  // With a fused ReLU, the gradient reaching the normalization is dy where y > 0. The
  // sums serve the parameter gradients and the batch statistics' terms only.
  const bool param_grads = diff_weight.defined();
  RESNET_CHECK(param_grads == diff_bias.defined(),
               "BatchNorm2d: expected both parameter gradients or neither");
  std::vector<double> sums = param_grads || !use_global_stats
                                 ? channel_sums(w, src, diff_dst, relu_dst, m)
                                 : std::vector<double>(static_cast<size_t>(2 * cp), 0.0);
  // d/dx of gamma * xhat + beta; with batch statistics, xhat's own dependence on the
  // mean and variance subtracts the projections onto 1 and onto xhat.
  // Synchronised statistics: the input gradient needs the sums over every rank's batch;
  // the parameter gradients are this rank's own.
  std::vector<double> batch_sums = sums;
  if (reducer_ && !use_global_stats) reduce_channel_sums(reducer_, batch_sums, w.c, cp, count);
  std::vector<float> a(static_cast<size_t>(cp), 0.f), b(static_cast<size_t>(cp), 0.f),
      k(static_cast<size_t>(cp), 0.f);
  const std::vector<float> gamma = padded(weight, cp, 0.f);
  for (int64_t c = 0; c < w.c; ++c) {
    const double invstd = 1.0 / std::sqrt(static_cast<double>(var.f32()[c]) + impl_->eps);
    const double sum_dy = sums[c], sum_dy_xmu = sums[cp + c];
    const double g = gamma[c] * invstd;
    const double kk = use_global_stats ? 0.0 : batch_sums[cp + c] * invstd * invstd / count;
    const double mean_dy = use_global_stats ? 0.0 : batch_sums[c] / count;
    // dx = g * (dy - mean_dy - (x - mean) * kk) = a * dy + b + k * (x - mean); x - mean
    // is formed first so that a large mean does not cancel in float.
    a[c] = static_cast<float>(g);
    k[c] = static_cast<float>(-g * kk);
    b[c] = static_cast<float>(-g * mean_dy);
    if (!param_grads) continue;
    diff_weight.f32()[c] += static_cast<float>(sum_dy_xmu * invstd);
    diff_bias.f32()[c] += static_cast<float>(sum_dy);
  }
  Tensor diff_src = Tensor::empty(src.shape(), checked_out_type(grad_type), src.layout());
  channel_affine(w, diff_src, src, diff_dst, relu_dst, a.data(), b.data(), k.data(), m, false);
  return diff_src;
}

}  // namespace resnet::backend
