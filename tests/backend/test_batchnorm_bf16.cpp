// A batch norm that writes for a bf16 convolution writes bf16 itself (mixed-precision
// training): its output, its recomputed output and its input gradient in bf16 are the f32
// ones rounded by oneDNN's conversion, bit for bit, and a bf16 ReLU mask gives the
// gradients of the f32 one, bit for bit. So the handoff changes the passes over memory,
// never a value. Odd channel counts (a partial 16-channel block), both layouts.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "resnet/backend/activation_ops.h"
#include "resnet/backend/batchnorm2d.h"
#include "resnet/backend/eltwise.h"
#include "resnet/core/error.h"
#include "resnet/nn/relu.h"
#include "support/gradcheck.h"

namespace resnet {
namespace {

using testing::bitwise_equal;

Tensor rounded_to_bf16(const Tensor& t) {
  return backend::activation_convert(t, 1.f, DType::bf16, t.layout() == Layout::blocked16);
}

// Gamma with a zero, a tiny, a negative and an ordinary channel, repeated.
Tensor awkward_gamma(int64_t c) {
  Tensor g({c});
  const float values[] = {0.f, 1e-30f, -0.7f, 1.3f, 1e-8f};
  for (int64_t i = 0; i < c; ++i) g.f32()[i] = values[i % 5];
  return g;
}

struct Case {
  Layout layout;
  int64_t channels;
  bool relu;
  std::string str() const {
    return "C=" + std::to_string(channels) + (relu ? " relu" : "") +
           (layout == Layout::blocked16 ? " blocked16" : " plain");
  }
};

std::vector<Case> cases() {
  std::vector<Case> out;
  for (Layout layout : {Layout::plain, Layout::blocked16})
    for (int64_t c : {5, 21, 32})
      for (bool relu : {false, true}) out.push_back({layout, c, relu});
  return out;
}

TEST(BatchNormBf16Handoff, TrainingOutputIsTheF32OutputRoundedBitForBit) {
  for (const Case& k : cases()) {
    const Tensor x =
        backend::to_layout(testing::random_tensor({3, k.channels, 5, 7}, 11, -3.f, 5.f), k.layout);
    const Tensor gamma = awkward_gamma(k.channels), beta = testing::random_tensor({k.channels}, 12);
    Tensor mean({k.channels}), var({k.channels}), mean16({k.channels}), var16({k.channels});
    backend::BatchNorm2dKernel kernel(1e-5);
    backend::BatchNormAffine affine;
    const Tensor y = kernel.forward_train(x, gamma, beta, mean, var, k.relu, &affine);
    const Tensor y16 =
        kernel.forward_train(x, gamma, beta, mean16, var16, k.relu, nullptr, DType::bf16);
    ASSERT_EQ(y16.dtype(), DType::bf16);
    EXPECT_TRUE(bitwise_equal(y16, rounded_to_bf16(y))) << k.str();
    EXPECT_TRUE(bitwise_equal(mean16, mean) && bitwise_equal(var16, var)) << k.str();
    // The output recomputed for backward, in bf16 too.
    EXPECT_TRUE(bitwise_equal(kernel.apply(x, affine, k.relu, DType::bf16), y16)) << k.str();
  }
}

TEST(BatchNormBf16Handoff, InputGradientIsTheF32GradientRoundedBitForBit) {
  for (const Case& k : cases()) {
    const Shape shape = {3, k.channels, 5, 7};
    const Tensor x = backend::to_layout(testing::random_tensor(shape, 21, -3.f, 5.f), k.layout);
    const Tensor dy = backend::to_layout(testing::random_tensor(shape, 22), k.layout);
    const Tensor gamma = awkward_gamma(k.channels), beta = testing::random_tensor({k.channels}, 23);
    backend::BatchNorm2dKernel kernel(1e-5);
    Tensor mean({k.channels}), var({k.channels});
    const Tensor y = kernel.forward_train(x, gamma, beta, mean, var, k.relu);
    const Tensor mask = k.relu ? y : Tensor();
    for (bool batch_stats : {true, false}) {
      Tensor dw({k.channels}), db({k.channels}), dw16({k.channels}), db16({k.channels});
      const Tensor dx =
          kernel.backward(dy, x, gamma, mean, var, !batch_stats, dw, db, mask, DType::f32);
      const Tensor dx16 =
          kernel.backward(dy, x, gamma, mean, var, !batch_stats, dw16, db16, mask, DType::bf16);
      ASSERT_EQ(dx16.dtype(), DType::bf16);
      EXPECT_TRUE(bitwise_equal(dx16, rounded_to_bf16(dx))) << k.str();
      EXPECT_TRUE(bitwise_equal(dw16, dw) && bitwise_equal(db16, db)) << k.str();
    }
  }
}

TEST(BatchNormBf16Handoff, Bf16ReluMaskGivesTheF32MasksGradientsBitForBit) {
  for (const Case& k : cases()) {
    if (!k.relu) continue;
    const Shape shape = {2, k.channels, 3, 5};
    const Tensor x = backend::to_layout(testing::random_tensor(shape, 31, -2.f, 2.f), k.layout);
    const Tensor dy = backend::to_layout(testing::random_tensor(shape, 32), k.layout);
    const Tensor gamma = awkward_gamma(k.channels), beta = testing::random_tensor({k.channels}, 33);
    backend::BatchNorm2dKernel kernel(1e-5);
    Tensor mean({k.channels}), var({k.channels});
    const Tensor y = kernel.forward_train(x, gamma, beta, mean, var, true);
    const Tensor y16 = rounded_to_bf16(y);
    Tensor dw({k.channels}), db({k.channels}), dw16({k.channels}), db16({k.channels});
    const Tensor dx = kernel.backward(dy, x, gamma, mean, var, false, dw, db, y);
    const Tensor dx16 = kernel.backward(dy, x, gamma, mean, var, false, dw16, db16, y16);
    EXPECT_TRUE(bitwise_equal(dx16, dx)) << k.str();
    EXPECT_TRUE(bitwise_equal(dw16, dw) && bitwise_equal(db16, db)) << k.str();
  }
}

TEST(BatchNormBf16Handoff, NanStaysNanAndOtherTypesAreRefused) {
  Tensor x = testing::random_tensor({2, 3, 4, 4}, 41);
  x.f32()[5] = std::nanf("");  // channel 0: its statistics, and so its outputs, are NaN
  backend::BatchNorm2dKernel kernel(1e-5);
  Tensor mean({3}), var({3});
  const Tensor y16 = kernel.forward_train(x, Tensor::full({3}, 1.f), Tensor({3}), mean, var, false,
                                          nullptr, DType::bf16);
  const auto* bits = static_cast<const uint16_t*>(y16.raw());
  for (int64_t i = 0; i < 16; ++i) {
    const uint32_t wide = static_cast<uint32_t>(bits[i]) << 16;
    float v;
    std::memcpy(&v, &wide, sizeof v);
    EXPECT_TRUE(std::isnan(v)) << i;
  }
  EXPECT_THROW(kernel.forward_train(x, Tensor::full({3}, 1.f), Tensor({3}), mean, var, false,
                                    nullptr, DType::i8),
               Error);
}

Tensor widened(const Tensor& t16) {
  return backend::activation_convert(t16, 1.f, DType::f32, t16.layout() == Layout::blocked16);
}

// In mixed-precision training a convolution hands its batch norm a bf16 output and a bf16
// output gradient: the batch norm computes exactly what it computes on those values in
// f32 (statistics, output, recomputed output, gradients, inference), bit for bit.
TEST(BatchNormBf16Handoff, Bf16InputAndGradientGiveTheF32ResultsOfTheSameValues) {
  for (const Case& k : cases()) {
    const Shape shape = {3, k.channels, 5, 7};
    const Tensor x16 =
        rounded_to_bf16(backend::to_layout(testing::random_tensor(shape, 61, -3.f, 5.f), k.layout));
    const Tensor dy16 =
        rounded_to_bf16(backend::to_layout(testing::random_tensor(shape, 62), k.layout));
    const Tensor x = widened(x16), dy = widened(dy16);
    const Tensor gamma = awkward_gamma(k.channels), beta = testing::random_tensor({k.channels}, 63);
    backend::BatchNorm2dKernel kernel(1e-5);
    for (DType out : {DType::f32, DType::bf16}) {
      Tensor mean({k.channels}), var({k.channels}), mean16({k.channels}), var16({k.channels});
      backend::BatchNormAffine affine, affine16;
      const Tensor y = kernel.forward_train(x, gamma, beta, mean, var, k.relu, &affine, out);
      const Tensor y16 =
          kernel.forward_train(x16, gamma, beta, mean16, var16, k.relu, &affine16, out);
      EXPECT_TRUE(bitwise_equal(y16, y)) << k.str();
      EXPECT_TRUE(bitwise_equal(mean16, mean) && bitwise_equal(var16, var)) << k.str();
      EXPECT_TRUE(bitwise_equal(kernel.apply(x16, affine16, k.relu, out), y)) << k.str();
      const Tensor mask = k.relu ? y : Tensor();
      for (bool batch_stats : {true, false}) {
        Tensor dw({k.channels}), db({k.channels}), dw16({k.channels}), db16({k.channels});
        const Tensor dx = kernel.backward(dy, x, gamma, mean, var, !batch_stats, dw, db, mask, out);
        const Tensor dx16 =
            kernel.backward(dy16, x16, gamma, mean, var, !batch_stats, dw16, db16, mask, out);
        EXPECT_TRUE(bitwise_equal(dx16, dx)) << k.str();
        EXPECT_TRUE(bitwise_equal(dw16, dw) && bitwise_equal(db16, db)) << k.str();
      }
    }
    // A frozen batch norm (inference statistics) reads a bf16 input too.
    const Tensor rm = testing::random_tensor({k.channels}, 64),
                 rv = testing::random_tensor({k.channels}, 65, 0.5f, 2.f);
    EXPECT_TRUE(bitwise_equal(kernel.forward_eval(x16, gamma, beta, rm, rv, k.relu),
                              kernel.forward_eval(x, gamma, beta, rm, rv, k.relu)))
        << k.str();
  }
}

// Only a module computing in bf16 takes bf16 in: anything else refuses it in one line.
TEST(BatchNormBf16Handoff, ModulesThatComputeInF32RefuseBf16Input) {
  nn::ReLU relu;
  const Tensor x16 = rounded_to_bf16(testing::random_tensor({1, 2, 3, 3}, 51));
  try {
    relu.forward(x16);
    FAIL() << "a bf16 input was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected f32 input, got bf16"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace resnet
