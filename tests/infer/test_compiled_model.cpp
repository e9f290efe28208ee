// The compiled inference graph against the module tree's own eval forward: BN folding,
// add/ReLU fusion, blocked layouts and buffer reuse must not change the answer beyond
// the numerics contract (f32) or the documented bf16 tolerance.
#include <gtest/gtest.h>

#include "resnet/core/error.h"
#include "resnet/infer/compiled_model.h"
#include "resnet/infer/lower_module.h"
#include "resnet/models/zoo.h"
#include "resnet/nn/residual_block.h"
#include "support/deterministic_weights.h"

namespace resnet::infer {
namespace rt = resnet::testing;
namespace {

struct Case {
  std::string model;
  Shape input;
  int64_t classes = 0;
  char shortcut = 'A';
};

nn::ModulePtr make(const Case& c) {
  models::ModelOptions o;
  o.num_classes = c.classes;
  o.in_channels = c.input[1];
  o.cifar_shortcut = c.shortcut;
  nn::ModulePtr m = models::build(c.model, o);
  rt::fill_deterministic(*m, 7);
  m->eval();
  return m;
}

float relative_error(const Tensor& got, const Tensor& want) {
  return max_abs_diff(got, want) / std::max(max_abs(want), 1e-30f);
}

class CompiledVsModule : public ::testing::TestWithParam<Case> {};

TEST_P(CompiledVsModule, F32MatchesEvalForward) {
  const Case& c = GetParam();
  nn::ModulePtr m = make(c);
  Tensor x = rt::deterministic_tensor(3, "input", c.input);
  nn::GradEnabledGuard no_grad(false);
  Tensor want = m->forward(x);
  CompiledModel compiled(lower_module(*m));
  Tensor got = compiled.run(x);
  ASSERT_EQ(got.shape(), want.shape());
  EXPECT_LT(relative_error(got, want), 1e-4f) << compiled.describe();
  // A second run reuses every buffer and primitive; same answer.
  Tensor again = compiled.run(x);
  EXPECT_EQ(max_abs_diff(again, got), 0.f);
}

TEST_P(CompiledVsModule, Bf16WithinTolerance) {
  const Case& c = GetParam();
  nn::ModulePtr m = make(c);
  Tensor x = rt::deterministic_tensor(3, "input", c.input);
  nn::GradEnabledGuard no_grad(false);
  Tensor want = m->forward(x);
  CompiledModel compiled(lower_module(*m), {Precision::bf16});
  Tensor got = compiled.run(x);
  // bf16 keeps 8 bits of mantissa: each layer rounds its input and weights to about
  // 0.4%, and the errors add up over depth; 5% of the output's range holds for these
  // depths (measured well below it), while a wrong layout or a dropped op is far above.
  EXPECT_LT(relative_error(got, want), 5e-2f);
}

INSTANTIATE_TEST_SUITE_P(
    Zoo, CompiledVsModule,
    ::testing::Values(Case{"resnet20", {3, 1, 28, 28}}, Case{"resnet20", {2, 3, 17, 15}, 0, 'B'},
                      Case{"plain20", {2, 3, 32, 32}}, Case{"resnet18", {2, 3, 64, 48}},
                      Case{"resnet50", {1, 3, 64, 64}}, Case{"resnext50_32x4d", {1, 3, 40, 40}},
                      Case{"resnet18", {1, 1, 33, 37}, 7}),
    [](const auto& info) {
      std::string n = info.param.model + "_" + std::to_string(info.param.input[0]) + "x" +
                      std::to_string(info.param.input[1]) + "x" +
                      std::to_string(info.param.input[2]) + "x" +
                      std::to_string(info.param.input[3]);
      if (info.param.shortcut == 'B') n += "_B";
      return n;
    });

TEST(CompiledModel, SeedBlockMatches) {
  for (auto [in, out, stride] : {std::tuple{5, 8, 2}, {16, 16, 1}}) {
    nn::ResidualBlock block(in, out, stride);
    rt::fill_deterministic(block, 11);
    block.eval();
    Tensor x = rt::deterministic_tensor(5, "input", {2, in, 9, 7});
    nn::GradEnabledGuard no_grad(false);
    Tensor want = block.forward(x);
    CompiledModel compiled(lower_module(block));
    EXPECT_LT(relative_error(compiled.run(x), want), 1e-4f);
  }
}

TEST(CompiledModel, FusesBatchNormAddAndRelu) {
  Case c{"resnet18", {1, 3, 32, 32}};
  nn::ModulePtr m = make(c);
  CompiledModel compiled(lower_module(*m));
  compiled.run(rt::deterministic_tensor(3, "input", c.input));
  const std::string d = compiled.describe();
  // 20 convolutions, the 21 BNs folded (20 after convs)... every step is a conv, a pool
  // or the classifier: no separate BN, add or ReLU survives.
  EXPECT_EQ(d.find("BatchNormalization"), std::string::npos) << d;
  EXPECT_EQ(d.find("\nAdd"), std::string::npos) << d;
  EXPECT_EQ(d.find("\nRelu"), std::string::npos) << d;
  EXPECT_NE(d.find("+ add layer4.1.add + relu layer4.1.relu"), std::string::npos) << d;
}

TEST(CompiledModel, NewInputShapeRecompiles) {
  Case c{"resnet20", {2, 1, 28, 28}};
  nn::ModulePtr m = make(c);
  CompiledModel compiled(lower_module(*m));
  nn::GradEnabledGuard no_grad(false);
  for (Shape s : {Shape{2, 1, 28, 28}, Shape{1, 1, 20, 24}, Shape{2, 1, 28, 28}}) {
    Tensor x = rt::deterministic_tensor(4, "input", s);
    EXPECT_LT(relative_error(compiled.run(x), m->forward(x)), 1e-4f);
  }
}

TEST(CompiledModel, RejectsWrongInput) {
  Case c{"resnet20", {1, 1, 28, 28}};
  nn::ModulePtr m = make(c);
  CompiledModel compiled(lower_module(*m));
  EXPECT_THROW(compiled.run(Tensor({1, 3, 28, 28})), Error);
  EXPECT_THROW(compiled.run(Tensor({28, 28})), Error);
}

}  // namespace
}  // namespace resnet::infer
