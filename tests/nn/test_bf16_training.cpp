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
// batch norm's backward, by as much as the network's conditioning allows: from 4%
// (resnet1202) to 71% (plain110) in the worst tensor. So the judge is the network's own
// sensitivity, as f32 is judged against float64 where PyTorch's own f32 is far from it:
// the f32 step given operands rounded to bf16 (input and parameters) moves by 4% to 52%
// on the same networks, and the bf16 step must stay within a small multiple of that.
// The accuracy that bf16 training reaches is the end-to-end check.
//
// On a CPU without native bf16 (AVX512_BF16) the tests skip and say so: oneDNN would
// emulate bf16 there, which is not what `train --precision bf16` runs (it trains f32).

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "resnet/backend/activation_ops.h"
#include "resnet/backend/conv2d.h"
#include "resnet/backend/eltwise.h"
#include "resnet/core/error.h"
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

// A convolution whose output (or input gradient) only a batch norm reads writes it in
// bf16: the f32 result rounded by oneDNN's conversion, bit for bit.
TEST(Bf16Convolution, Bf16OutputAndInputGradientAreTheF32OnesRounded) {
  if (!backend::cpu_has_native_bf16())
    GTEST_SKIP() << "this CPU has no native bf16 (AVX512_BF16): bf16 training would run f32";
  for (Layout layout : {Layout::plain, Layout::blocked16}) {
    backend::Conv2dConfig cfg;
    cfg.in_channels = 21, cfg.out_channels = 19;
    cfg.kernel_h = cfg.kernel_w = 3;
    cfg.pad_h = cfg.pad_w = 1;
    backend::Conv2dKernel f32_out(cfg), bf16_out(cfg);
    f32_out.set_compute_type(DType::bf16);
    bf16_out.set_compute_type(DType::bf16);
    bf16_out.set_output_type(DType::bf16);
    bf16_out.set_grad_input_type(DType::bf16);
    const Shape in_shape = {3, 21, 9, 7};
    const Tensor x = backend::to_layout(testing::random_tensor(in_shape, 7), layout);
    const Tensor w = testing::random_tensor({19, 21, 3, 3}, 8);
    const Tensor y = f32_out.forward(x, w, Tensor(), layout);
    const Tensor y16 = bf16_out.forward(x, w, Tensor(), layout);
    ASSERT_EQ(y16.dtype(), DType::bf16);
    auto rounded = [](const Tensor& t) {
      return backend::activation_convert(t, 1.f, DType::bf16, t.layout() == Layout::blocked16);
    };
    EXPECT_TRUE(testing::bitwise_equal(y16, rounded(y)));
    const Tensor dy = backend::to_layout(testing::random_tensor(y.shape(), 9), layout);
    const Tensor dx = f32_out.backward_data(dy, w, in_shape, layout);
    const Tensor dx16 = bf16_out.backward_data(dy, w, in_shape, layout);
    ASSERT_EQ(dx16.dtype(), DType::bf16);
    EXPECT_TRUE(testing::bitwise_equal(dx16, rounded(dx)));
  }
  backend::Conv2dKernel f32_compute(backend::Conv2dConfig{});
  EXPECT_THROW(f32_compute.set_output_type(DType::bf16), Error);
}

struct Case {
  std::string model;
  Shape input;
};

class Bf16Training : public ::testing::TestWithParam<Case> {};

// One training step's tensors: the output, the input gradient, every parameter gradient
// and every f32 buffer (running statistics), by name.
struct StepTensors {
  std::vector<std::pair<std::string, Tensor>> tensors;
  size_t first_gradient = 0, end_gradient = 0;  // the parameter gradients' range
  double largest_gradient = 0;
};

StepTensors run_step(nn::Module& model, const Tensor& x, const Tensor& dy) {
  StepTensors s;
  s.tensors.emplace_back("output", model.forward(x));
  s.tensors.emplace_back("input gradient", model.backward(dy));
  s.first_gradient = s.tensors.size();
  for (auto& [name, p] : model.named_parameters()) {
    s.tensors.emplace_back(name + ".grad", p->grad);
    s.largest_gradient = std::max(s.largest_gradient, l2_norm(p->grad));
  }
  s.end_gradient = s.tensors.size();
  for (auto& [name, b] : model.named_buffers())
    if (b->dtype() == DType::f32) s.tensors.emplace_back(name, *b);
  return s;
}

// Relative errors of `a` against the f32 step, tensor by tensor. A gradient that is all
// but zero in f32 (a BN bias whose every path ends in another BN's mean subtraction) is
// judged against the network's largest gradient norm / 1000.
std::vector<double> relative_errors(const StepTensors& a, const StepTensors& f32) {
  std::vector<double> errors;
  for (size_t i = 0; i < f32.tensors.size(); ++i) {
    const bool gradient = i >= f32.first_gradient && i < f32.end_gradient;
    errors.push_back(relative_error(a.tensors[i].second, f32.tensors[i].second,
                                    gradient ? f32.largest_gradient / 1000 : 0));
  }
  return errors;
}

double median_gradient_error(const std::vector<double>& errors, const StepTensors& s) {
  std::vector<double> g(errors.begin() + s.first_gradient, errors.begin() + s.end_gradient);
  std::nth_element(g.begin(), g.begin() + g.size() / 2, g.end());
  return g[g.size() / 2];
}

// The documented bound, relative to the network's own conditioning. The reference is the
// f32 step on operands rounded to bf16 (the input and every parameter): how far the f32
// network itself moves when what it is given is only as precise as bf16. A deep plain
// network's gradients move by 45% to 52% under that alone (plain110, plain56), a residual
// one's by 4% to 27%, so no fixed bound fits every network. bf16 rounds at every
// convolution, not once, and at up to four points per convolution (its input, its
// weights, its output for the batch norm, the gradient it receives), so its step moves
// further than the reference, by a factor measured in 21 cases (20 zoo networks, odd shapes)
// (README, Numerics): worst tensor at most 2.05 times the reference's worst tensor
// (resnet101), median parameter gradient at most 2.80 times the reference's median
// (resnet152). The bounds leave about a factor 1.4 above those.
constexpr double kWorstTensorFactor = 3.0;
constexpr double kMedianGradientFactor = 4.0;

TEST_P(Bf16Training, OneStepStaysWithinTheNetworksOwnBf16RoundingError) {
  if (!backend::cpu_has_native_bf16())
    GTEST_SKIP() << "this CPU has no native bf16 (AVX512_BF16): bf16 training would run f32";
  const Case& c = GetParam();
  nn::ModulePtr f32 = testing::deterministic_model(c.model, c.input[1], 3);
  nn::ModulePtr bf16 = testing::deterministic_model(c.model, c.input[1], 3);
  nn::ModulePtr rounded = testing::deterministic_model(c.model, c.input[1], 3);
  EXPECT_GT(nn::set_conv_compute_type(*bf16, DType::bf16), 0);
  for (auto& [name, p] : rounded->named_parameters()) p->value = rounded_to_bf16(p->value);
  const Tensor x = testing::random_tensor(c.input, 11);
  const Tensor dy = testing::random_tensor({c.input[0], 10}, 12);
  const StepTensors s32 = run_step(*f32, x, dy), s16 = run_step(*bf16, x, dy),
                    sr = run_step(*rounded, rounded_to_bf16(x), dy);
  EXPECT_GT(max_abs_diff(s16.tensors[0].second, s32.tensors[0].second), 0.f)
      << "bf16 computed exactly what f32 did";
  const std::vector<double> e16 = relative_errors(s16, s32), er = relative_errors(sr, s32);
  const size_t worst16 = std::max_element(e16.begin(), e16.end()) - e16.begin();
  const double worst_reference = *std::max_element(er.begin(), er.end());
  const double median16 = median_gradient_error(e16, s32);
  const double median_reference = median_gradient_error(er, s32);
  std::printf(
      "%s: worst tensor %.4f (%s), rounded operands %.4f; median gradient %.4f, rounded "
      "operands %.4f\n",
      c.model.c_str(), e16[worst16], s32.tensors[worst16].first.c_str(), worst_reference, median16,
      median_reference);
  EXPECT_LT(e16[worst16], kWorstTensorFactor * worst_reference) << s32.tensors[worst16].first;
  EXPECT_LT(median16, kMedianGradientFactor * median_reference);
}

INSTANTIATE_TEST_SUITE_P(
    Zoo, Bf16Training,
    ::testing::Values(Case{"resnet20", {32, 1, 28, 28}}, Case{"resnet18", {8, 3, 64, 64}},
                      Case{"resnet50", {8, 3, 64, 64}}, Case{"resnext50_32x4d", {4, 3, 64, 64}},
                      Case{"plain20", {32, 3, 32, 32}}, Case{"resnet110", {16, 1, 28, 28}},
                      Case{"resnet34", {5, 3, 67, 61}}),
    [](const auto& info) { return info.param.model; });

}  // namespace
}  // namespace resnet
