// Mixed-precision (bf16) training against f32.
//
// One convolution: the bf16 kernel computes exactly what f32 computes on operands
// rounded to bf16 (round to nearest even), forward, backward-data and backward-weights,
// up to f32 summation order. So the only difference from f32 is the rounding of the
// convolutions' inputs, weights and incoming gradients.
//
// One training step of zoo networks, the same weights and input, compared tensor by
// tensor (the output, the input gradient, every parameter gradient and the running
// statistics) in relative L2 norm. bf16 keeps 8 significant bits (relative rounding
// 2^-9), and the rounding at every convolution compounds through the depth and through
// batch norm's backward: measured 9% (resnet20, batch 32, 28x28) to 20% (resnet18,
// batch 8, 64x64) at worst. For scale: on these networks perturbing only the f32 input
// by 2^-8 relative moves resnet20's gradients by up to 5%. The bound, 30%, is the
// documented one (README, Numerics); the accuracy that bf16 training reaches is the
// end-to-end check.
//
// On a CPU without native bf16 (AVX512_BF16) the tests skip and say so: oneDNN would
// emulate bf16 there, which is not what `train --precision bf16` runs (it trains f32).

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "resnet/backend/activation_ops.h"
#include "resnet/backend/conv2d.h"
#include "resnet/backend/eltwise.h"
#include "resnet/nn/precision.h"
#include "support/deterministic_weights.h"
#include "support/gradcheck.h"

namespace resnet {
namespace {

double l2_norm(const Tensor& t) {
  double sum = 0;
  for (float v : t.values()) sum += double(v) * v;
  return std::sqrt(sum);
}

// ||a - b|| / max(||b||, floor) (b: the f32 tensor).
double relative_error(const Tensor& a, const Tensor& b, double floor = 0) {
  double diff = 0;
  auto av = a.values(), bv = b.values();
  for (size_t i = 0; i < av.size(); ++i) diff += (double(av[i]) - bv[i]) * (double(av[i]) - bv[i]);
  return std::sqrt(diff) / std::max({l2_norm(b), floor, 1e-30});
}

// v rounded to the nearest bf16 (ties to even), as oneDNN's f32 -> bf16 conversion.
float round_to_bf16(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  bits &= 0xffff0000u;
  std::memcpy(&v, &bits, 4);
  return v;
}

Tensor rounded_to_bf16(const Tensor& t) {
  Tensor r = t.clone();
  for (float& v : r.values()) v = round_to_bf16(v);
  return r;
}

double max_relative(const Tensor& a, const Tensor& b) {
  return max_abs_diff(a, b) / std::max(static_cast<double>(max_abs(b)), 1e-30);
}

TEST(Bf16Convolution, IsF32OnOperandsRoundedToBf16) {
  if (!backend::cpu_has_native_bf16())
    GTEST_SKIP() << "this CPU has no native bf16 (AVX512_BF16): bf16 training would run f32";
  struct Shape4 {
    Shape input;
    int64_t out, kernel, stride, pad;
    Layout layout;
  };
  for (const Shape4& c : {Shape4{{3, 5, 9, 11}, 7, 3, 2, 1, Layout::plain},
                          Shape4{{2, 16, 8, 8}, 32, 3, 1, 1, Layout::blocked16},
                          Shape4{{2, 32, 7, 5}, 16, 1, 1, 0, Layout::blocked16}}) {
    backend::Conv2dConfig cfg;
    cfg.in_channels = c.input[1], cfg.out_channels = c.out;
    cfg.kernel_h = cfg.kernel_w = c.kernel;
    cfg.stride_h = cfg.stride_w = c.stride;
    cfg.pad_h = cfg.pad_w = c.pad;
    backend::Conv2dKernel bf16(cfg), f32(cfg);
    bf16.set_compute_type(DType::bf16);
    f32.set_winograd(false);  // the reference: direct summation
    const Tensor x = backend::to_layout(testing::random_tensor(c.input, 1), c.layout);
    const Tensor w = testing::random_tensor({c.out, c.input[1], c.kernel, c.kernel}, 2);
    const Tensor xr =
        backend::to_layout(rounded_to_bf16(backend::to_layout(x, Layout::plain)), c.layout);
    const Tensor wr = rounded_to_bf16(w);
    const Tensor y16 = bf16.forward(x, w, Tensor(), c.layout);
    const Tensor y32 = f32.forward(xr, wr, Tensor(), c.layout);
    EXPECT_LT(max_relative(backend::to_layout(y16, Layout::plain),
                           backend::to_layout(y32, Layout::plain)),
              1e-5);
    const Tensor dy = backend::to_layout(testing::random_tensor(y32.shape(), 3), c.layout);
    const Tensor dyr =
        backend::to_layout(rounded_to_bf16(backend::to_layout(dy, Layout::plain)), c.layout);
    EXPECT_LT(max_relative(
                  backend::to_layout(bf16.backward_data(dy, w, c.input, c.layout), Layout::plain),
                  backend::to_layout(f32.backward_data(dyr, wr, c.input, c.layout), Layout::plain)),
              1e-5);
    Tensor dw16(w.shape()), dw32(w.shape()), no_bias;
    bf16.backward_weights(dy, x, dw16, no_bias);
    f32.backward_weights(dyr, xr, dw32, no_bias);
    EXPECT_LT(max_relative(dw16, dw32), 1e-5);
    // And the rounding is there: f32 on the unrounded operands differs.
    EXPECT_GT(
        max_abs_diff(backend::to_layout(y16, Layout::plain),
                     backend::to_layout(f32.forward(x, w, Tensor(), c.layout), Layout::plain)),
        0.f);
  }
}

struct Case {
  std::string model;
  Shape input;
};

class Bf16Training : public ::testing::TestWithParam<Case> {};

// Documented bound: every gradient, output and running statistic of one bf16 step
// within 30% of the f32 tensor in relative L2 norm.
constexpr double kBf16StepBound = 0.30;

TEST_P(Bf16Training, OneStepAgreesWithF32WithinTheBound) {
  if (!backend::cpu_has_native_bf16())
    GTEST_SKIP() << "this CPU has no native bf16 (AVX512_BF16): bf16 training would run f32";
  const Case& c = GetParam();
  nn::ModulePtr f32 = testing::deterministic_model(c.model, c.input[1], 3);
  nn::ModulePtr bf16 = testing::deterministic_model(c.model, c.input[1], 3);
  EXPECT_GT(nn::set_conv_compute_type(*bf16, DType::bf16), 0);
  const Tensor x = testing::random_tensor(c.input, 11);
  Tensor y32 = f32->forward(x), y16 = bf16->forward(x);
  EXPECT_GT(max_abs_diff(y16, y32), 0.f) << "bf16 computed exactly what f32 did";
  const Tensor dy = testing::random_tensor(y32.shape(), 12);
  Tensor dx32 = f32->backward(dy), dx16 = bf16->backward(dy);
  double worst = relative_error(y16, y32);
  std::string worst_name = "output";
  auto track = [&](const std::string& name, const Tensor& a, const Tensor& b, double floor) {
    const double e = relative_error(a, b, floor);
    if (e > worst) worst = e, worst_name = name;
  };
  track("input gradient", dx16, dx32, 0);
  auto p16 = bf16->named_parameters(), p32 = f32->named_parameters();
  ASSERT_EQ(p16.size(), p32.size());
  // A gradient that is all but zero in f32 (a BN bias whose every path ends in another
  // BN's mean subtraction) is judged against the network's largest gradient norm / 1000.
  double largest = 0;
  for (auto& [name, p] : p32) largest = std::max(largest, l2_norm(p->grad));
  for (size_t i = 0; i < p16.size(); ++i)
    track(p32[i].first + ".grad", p16[i].second->grad, p32[i].second->grad, largest / 1000);
  auto b16 = bf16->named_buffers(), b32 = f32->named_buffers();
  ASSERT_EQ(b16.size(), b32.size());
  for (size_t i = 0; i < b16.size(); ++i)
    if (b32[i].second->dtype() == DType::f32)
      track(b32[i].first, *b16[i].second, *b32[i].second, 0);
  std::printf("%s: largest relative difference %.4f (%s)\n", c.model.c_str(), worst,
              worst_name.c_str());
  EXPECT_LT(worst, kBf16StepBound) << worst_name;
}

INSTANTIATE_TEST_SUITE_P(Zoo, Bf16Training,
                         ::testing::Values(Case{"resnet20", {32, 1, 28, 28}},
                                           Case{"resnet18", {8, 3, 64, 64}},
                                           Case{"resnet50", {8, 3, 64, 64}},
                                           Case{"resnext50_32x4d", {4, 3, 64, 64}}),
                         [](const auto& info) { return info.param.model; });

}  // namespace
}  // namespace resnet
