#pragma once
// Test helpers shared by the layer and kernel tests (header-only, GoogleTest-aware):
//   random_tensor  - deterministic uniform tensors from a seed;
//   bitwise_equal  - two tensors with the same shape, dtype, layout and bytes;
//   expect_close   - the project's numerics contract for comparing two implementations;
//   gradcheck      - a finite-difference gradient checker in the spirit of Caffe's
//                    GradientChecker and dlib's test_layer.
//
// The checker differentiates the scalar loss L = sum(f(x) * w) for a random fixed w of the
// output's shape, so the analytic gradient dL/dx is exactly "backward with diff_dst = w".
// Each checked element x_i is compared with the central difference
//   (L(x_i + h) - L(x_i - h)) / 2h,   passing when |analytic - numeric| <= atol + rtol * scale,
// with scale = max(|analytic|, |numeric|). Non-differentiable points (ReLU at 0, max-pool
// ties) are handled with a "kink" allowance: when the one-sided differences
//   d+ = (L(x_i + h) - L(x_i)) / h   and   d- = (L(x_i) - L(x_i - h)) / h
// disagree by more than the tolerance, a kink lies within +-eps and the central difference
// means nothing; the element is then only required to lie between d- and d+ (widened by the
// tolerance), which any one-sided derivative or subgradient of a single kink does.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "resnet/tensor/tensor.h"

namespace resnet::testing {

// Same shape, dtype, layout and bytes: for results that must not change at all.
inline bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && a.layout() == b.layout() &&
         a.nbytes() == b.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

// Uniform values in [lo, hi) drawn from std::mt19937(seed): the same seed gives the same tensor.
inline Tensor random_tensor(Shape shape, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  Tensor t(std::move(shape));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  for (float& v : t.values()) v = dist(rng);
  return t;
}

// Multi-index "[n, c, h, w]" of flat row-major `index` in `shape`.
inline std::string index_str(const Shape& shape, int64_t index) {
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = shape[d] > 0 ? index % shape[d] : 0;
    index = shape[d] > 0 ? index / shape[d] : 0;
  }
  return shape_str(idx);
}

// Absolute floor of expect_close's bound, so that an all-zero expected tensor (or one that
// is zero up to cancellation, like a BN gradient for a constant diff_dst) still compares.
inline constexpr double kExpectCloseAbsFloor = 1e-6;

// The numerics contract: passes when
//   max |actual - expected| <= max(tol_fraction_of_max * max |expected|, kExpectCloseAbsFloor).
// On failure adds a non-fatal GoogleTest failure naming `what`, the shapes, the max diff, its
// index and both values there. NaN in either tensor fails.
inline void expect_close(const Tensor& actual, const Tensor& expected, double tol_fraction_of_max,
                         const std::string& what) {
  if (!actual.defined() || !expected.defined()) {
    ADD_FAILURE() << what << ": expected two defined tensors, got actual "
                  << (actual.defined() ? "defined" : "undefined") << " and expected "
                  << (expected.defined() ? "defined" : "undefined");
    return;
  }
  if (actual.dtype() != DType::f32 || expected.dtype() != DType::f32) {
    ADD_FAILURE() << what << ": expected f32 tensors, got actual " << dtype_name(actual.dtype())
                  << " and expected " << dtype_name(expected.dtype());
    return;
  }
  if (actual.shape() != expected.shape()) {
    ADD_FAILURE() << what << ": expected shape " << expected.shape_str() << ", got "
                  << actual.shape_str();
    return;
  }
  const float* a = actual.f32();
  const float* e = expected.f32();
  double max_expected = 0.0, max_diff = 0.0;
  int64_t worst = -1, over = 0;
  std::vector<double> diffs(static_cast<size_t>(actual.numel()));
  for (int64_t i = 0; i < actual.numel(); ++i) {
    double d = std::fabs(double(a[i]) - double(e[i]));
    if (std::isnan(d)) d = std::numeric_limits<double>::infinity();
    diffs[i] = d;
    if (worst < 0 || d > max_diff) {
      max_diff = d;
      worst = i;
    }
    if (std::isfinite(e[i])) max_expected = std::max(max_expected, std::fabs(double(e[i])));
  }
  const double bound = std::max(tol_fraction_of_max * max_expected, kExpectCloseAbsFloor);
  if (worst < 0 || max_diff <= bound) return;
  for (double d : diffs) over += d > bound ? 1 : 0;
  ADD_FAILURE() << what << ": max diff " << max_diff << " > bound " << bound
                << " (= " << tol_fraction_of_max << " * max|expected| " << max_expected
                << ") at index " << worst << " " << index_str(expected.shape(), worst)
                << ": actual " << a[worst] << ", expected " << e[worst] << "; " << over << " of "
                << actual.numel() << " elements over the bound; shape " << actual.shape_str();
}

struct GradcheckOptions {
  double eps = 1e-3;     // finite-difference step h (f32 inputs: 1e-3 .. 1e-2)
  double rtol = 1e-2;    // relative tolerance, against max(|analytic|, |numeric|)
  double atol = 1e-3;    // absolute tolerance, absorbs f32 rounding in L(x +- h)
  int max_checks = 0;    // check a seeded random subset of this many elements; 0 = all
  uint32_t seed = 1234;  // loss weights w and the subset
  // A check where more than this fraction of elements sit at kinks checks little: fail it.
  double max_kink_fraction = 0.25;
};

// One element whose analytic gradient disagrees with the finite differences.
struct GradcheckMismatch {
  int64_t index = 0;      // flat index into x
  double expected = 0.0;  // central difference
  double computed = 0.0;  // analytic gradient
  double tolerance = 0.0;
  bool at_kink = false;  // then `computed` had to lie in [d_minus, d_plus] +- tolerance
  double d_minus = 0.0, d_plus = 0.0;
};

struct GradcheckResult {
  std::string what;
  Shape shape;          // of x
  int64_t checked = 0;  // elements compared
  int64_t kinks = 0;    // of those, elements bounded by one-sided differences only
  std::vector<GradcheckMismatch> mismatches;
  std::string problem;  // a failure not tied to one element (shapes, too many kinks)

  bool ok() const { return problem.empty() && mismatches.empty(); }

  // Human-readable summary listing the first mismatches; meant for `<< r.report()`.
  std::string report() const {
    std::ostringstream s;
    s << what << ": " << (ok() ? "ok" : "FAILED") << ", checked " << checked << " of "
      << shape_numel(shape) << " elements of " << shape_str(shape) << " (" << kinks
      << " at kinks), " << mismatches.size() << " mismatches";
    if (!problem.empty()) s << "; " << problem;
    constexpr size_t kShown = 10;
    for (size_t i = 0; i < std::min(mismatches.size(), kShown); ++i) {
      const GradcheckMismatch& m = mismatches[i];
      s << "\n  index " << m.index << " " << index_str(shape, m.index) << ": ";
      if (m.at_kink) {
        s << "at a kink, computed (analytic) " << m.computed << " outside one-sided differences ["
          << std::min(m.d_minus, m.d_plus) << ", " << std::max(m.d_minus, m.d_plus) << "] +- "
          << m.tolerance;
      } else {
        s << "expected (finite difference) " << m.expected << ", computed (analytic) " << m.computed
          << ", |diff| " << std::fabs(m.expected - m.computed) << " > tolerance " << m.tolerance;
      }
    }
    if (mismatches.size() > kShown) s << "\n  ... and " << mismatches.size() - kShown << " more";
    return s.str();
  }
};

// f: x -> f(x). Called with a perturbed copy of x (must not keep it), last with x itself.
using ForwardFn = std::function<Tensor(const Tensor& x)>;
// diff_dst -> dL/dx for L = sum(f(x) * diff_dst), at the x given to gradcheck.
using BackwardFn = std::function<Tensor(const Tensor& diff_dst)>;

// sum(y * w) in double; shapes must match (reported through `problem`).
inline double weighted_sum(const Tensor& y, const Tensor& w) {
  double acc = 0.0;
  const float* py = y.f32();
  const float* pw = w.f32();
  for (int64_t i = 0; i < y.numel(); ++i) acc += double(py[i]) * double(pw[i]);
  return acc;
}

// Compares `analytic` = dL/dx at x, for L = sum(forward(x) * loss_weights), with finite
// differences of L, element by element (all of them, or options.max_checks of them).
inline GradcheckResult check_gradient(const ForwardFn& forward, const Tensor& x,
                                      const Tensor& loss_weights, const Tensor& analytic,
                                      const GradcheckOptions& options = {},
                                      const std::string& what = "gradient") {
  GradcheckResult r;
  r.what = what;
  r.shape = x.shape();
  if (!analytic.defined() || analytic.shape() != x.shape()) {
    std::ostringstream m;
    m << "expected an analytic gradient of shape " << x.shape_str() << ", got "
      << (analytic.defined() ? analytic.shape_str() : "an undefined tensor");
    r.problem = m.str();
    return r;
  }
  Tensor xp = x.clone();  // perturbed in place, one element at a time
  auto loss = [&](std::string* problem) {
    Tensor y = forward(xp);
    if (y.shape() != loss_weights.shape()) {
      std::ostringstream m;
      m << "expected forward output of shape " << loss_weights.shape_str() << ", got "
        << y.shape_str();
      *problem = m.str();
      return 0.0;
    }
    return weighted_sum(y, loss_weights);
  };
  const double l0 = loss(&r.problem);
  if (!r.problem.empty()) return r;

  std::vector<int64_t> indices(static_cast<size_t>(x.numel()));
  std::iota(indices.begin(), indices.end(), int64_t{0});
  if (options.max_checks > 0 && options.max_checks < x.numel()) {
    std::mt19937 rng(options.seed);
    std::shuffle(indices.begin(), indices.end(), rng);
    indices.resize(static_cast<size_t>(options.max_checks));
    std::sort(indices.begin(), indices.end());
  }

  float* px = xp.f32();
  const float* pa = analytic.f32();
  for (int64_t i : indices) {
    const float orig = px[i];
    // Use the steps f32 can actually represent, not the nominal eps: x_i +- eps rounds.
    const float up = static_cast<float>(double(orig) + options.eps);
    const float down = static_cast<float>(double(orig) - options.eps);
    const double h_plus = double(up) - double(orig), h_minus = double(orig) - double(down);
    if (!(h_plus > 0.0 && h_minus > 0.0)) {
      std::ostringstream m;
      m << "eps " << options.eps << " vanishes next to x = " << orig << " in f32 at index " << i;
      r.problem = m.str();
      return r;
    }
    px[i] = up;
    const double l_plus = loss(&r.problem);
    px[i] = down;
    const double l_minus = loss(&r.problem);
    px[i] = orig;
    if (!r.problem.empty()) return r;

    const double numeric = (l_plus - l_minus) / (h_plus + h_minus);
    const double d_plus = (l_plus - l0) / h_plus, d_minus = (l0 - l_minus) / h_minus;
    const double computed = pa[i];
    ++r.checked;
    const double kink_tol =
        options.atol + options.rtol * std::max(std::fabs(d_plus), std::fabs(d_minus));
    if (std::fabs(d_plus - d_minus) > kink_tol) {
      ++r.kinks;
      const double lo = std::min(d_minus, d_plus) - kink_tol;
      const double hi = std::max(d_minus, d_plus) + kink_tol;
      if (!(computed >= lo && computed <= hi)) {
        r.mismatches.push_back({i, numeric, computed, kink_tol, true, d_minus, d_plus});
      }
      continue;
    }
    const double tol =
        options.atol + options.rtol * std::max(std::fabs(computed), std::fabs(numeric));
    // Written as !(a <= b) so that a NaN on either side is a mismatch.
    if (!(std::fabs(computed - numeric) <= tol)) {
      r.mismatches.push_back({i, numeric, computed, tol, false, d_minus, d_plus});
    }
  }
  // Leave a stateful forward (one that copies its argument into a layer) at the original x.
  forward(xp);
  if (r.checked > 0 && double(r.kinks) > options.max_kink_fraction * double(r.checked)) {
    std::ostringstream m;
    m << r.kinks << " of " << r.checked << " elements sit at kinks (more than "
      << options.max_kink_fraction
      << "): lower eps or move the inputs off the non-differentiable points";
    r.problem = m.str();
  }
  return r;
}

// Draws loss weights w (the forward output's shape, from options.seed), asks backward(w) for
// the analytic gradient and checks it with check_gradient.
inline GradcheckResult gradcheck(const ForwardFn& forward, const BackwardFn& backward,
                                 const Tensor& x, const GradcheckOptions& options = {},
                                 const std::string& what = "gradient") {
  const Tensor y = forward(x);
  // Offset the seed so w is not the same stream as an input drawn with options.seed.
  const Tensor w = random_tensor(y.shape(), options.seed + 0x9e3779b9u);
  return check_gradient(forward, x, w, backward(w), options, what);
}

}  // namespace resnet::testing
