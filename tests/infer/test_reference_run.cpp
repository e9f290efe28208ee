// The reference interpreter against the module tree (which the zoo tests hold to
// PyTorch), through lower_module: this checks the interpreter and the lowering together.
// Ops the lowering never emits (average pooling, asymmetric padding, ceil_mode, dilated
// pools) are checked on small cases worked out by hand.

#include "resnet/infer/reference_run.h"

#include <gtest/gtest.h>

#include <cctype>
#include <string>

#include "resnet/core/error.h"
#include "resnet/infer/lower_module.h"
#include "resnet/models/zoo.h"
#include "support/deterministic_weights.h"

namespace resnet::infer {
namespace {

const double kTolerance = 1e-4;  // the README's "Numerics": fraction of the reference's max |x|

struct LoweringCase {
  std::string model;
  char shortcut;
  Shape input;
};

class ReferenceRunVsModules : public ::testing::TestWithParam<LoweringCase> {};

TEST_P(ReferenceRunVsModules, MatchesEvalForward) {
  const LoweringCase& c = GetParam();
  models::ModelOptions options;
  options.cifar_shortcut = c.shortcut;
  auto model = models::build(c.model, options);
  testing::fill_deterministic(*model, 7);
  model->eval();
  const Tensor x = testing::deterministic_tensor(7, "input", c.input);
  const Tensor expected = model->forward(x);
  const Graph g = lower_module(*model);
  const Tensor got = run_reference(g, x);
  ASSERT_EQ(got.shape(), expected.shape());
  EXPECT_LE(max_abs_diff(got, expected), kTolerance * max_abs(expected)) << c.model;
  EXPECT_GT(max_abs(expected), 0.0f);
}

INSTANTIATE_TEST_SUITE_P(ReferenceZoo, ReferenceRunVsModules,
                         ::testing::Values(LoweringCase{"resnet20", 'A', {2, 3, 32, 32}},
                                           LoweringCase{"resnet20", 'B', {2, 3, 32, 32}},
                                           LoweringCase{"plain20", 'A', {2, 3, 32, 32}},
                                           LoweringCase{"resnet18", 'A', {1, 3, 40, 40}},
                                           LoweringCase{"resnet50", 'A', {1, 3, 32, 32}},
                                           LoweringCase{"resnext50_32x4d", 'A', {1, 3, 32, 32}},
                                           LoweringCase{"block:5,8,2", 'A', {2, 5, 9, 7}},
                                           LoweringCase{"block:4,4", 'A', {2, 4, 6, 6}}),
                         [](const auto& info) {
                           std::string name = info.param.model + "_" + info.param.shortcut;
                           for (char& ch : name)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return name;
                         });

// A one-node graph over an input of shape `in`.
Graph single(Node n) {
  Graph g;
  g.add_value("input");
  n.inputs = {0};
  g.output = g.add_node(std::move(n));
  return g;
}

// 0, 1, 2, ... as an f32 tensor.
Tensor iota(Shape shape) {
  Tensor t(std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = static_cast<float>(i);
  return t;
}

std::vector<float> floats(const Tensor& t) {
  return {t.values().begin(), t.values().end()};
}

TEST(ReferenceRunOps, AvgPoolCountIncludePadAndCeilMode) {
  // 1x1x3x3 input 0..8, kernel 2, stride 2, pad 1 on every side.
  Node n;
  n.op = OpKind::avg_pool;
  n.name = "pool";
  n.window.kernel_h = n.window.kernel_w = 2;
  n.window.stride_h = n.window.stride_w = 2;
  n.window.pad_t = n.window.pad_l = n.window.pad_b = n.window.pad_r = 1;
  const Tensor x = iota({1, 1, 3, 3});
  // Windows: {0}, {1, 2}, {3, 6}, {4, 5, 7, 8}.
  EXPECT_EQ(floats(run_reference(single(n), x)), (std::vector<float>{0, 1.5f, 4.5f, 6}));
  n.window.count_include_pad = true;  // every window holds 4 cells, padding included
  EXPECT_EQ(floats(run_reference(single(n), x)), (std::vector<float>{0, 0.75f, 2.25f, 6}));

  // ceil_mode on 1x1x4x4 0..15, kernel 3, stride 2, no pad: a second window of 2 rows and
  // columns, which counts only the cells inside the input even with count_include_pad.
  n.window.kernel_h = n.window.kernel_w = 3;
  n.window.pad_t = n.window.pad_l = n.window.pad_b = n.window.pad_r = 0;
  n.window.ceil_mode = true;
  const Tensor y = run_reference(single(n), iota({1, 1, 4, 4}));
  ASSERT_EQ(y.shape(), (Shape{1, 1, 2, 2}));
  // {0,1,2,4,5,6,8,9,10} -> 5; {2,3,6,7,10,11} -> 6.5; {8,9,10,12,13,14} -> 11;
  // {10,11,14,15} -> 12.5.
  EXPECT_EQ(floats(y), (std::vector<float>{5, 6.5f, 11, 12.5f}));
}

TEST(ReferenceRunOps, MaxPoolDilatedAsymmetricPads) {
  Node n;
  n.op = OpKind::max_pool;
  n.name = "pool";
  n.window.kernel_h = n.window.kernel_w = 2;
  n.window.dilation_h = n.window.dilation_w = 2;
  n.window.pad_b = n.window.pad_r = 1;
  // 1x1x3x3, -(0..8): taps (h, w), (h + 2, w), ... inside the input; the padding never wins.
  Tensor x = iota({1, 1, 3, 3});
  for (float& v : x.values()) v = -v;
  const Tensor y = run_reference(single(n), x);
  ASSERT_EQ(y.shape(), (Shape{1, 1, 2, 2}));
  EXPECT_EQ(floats(y), (std::vector<float>{0, -1, -3, -4}));
}

TEST(ReferenceRunOps, ConvAsymmetricPadsMatchExplicitPadding) {
  // A 1x1 kernel of weight 1 with pads {top 1, left 0, bottom 0, right 2}: the input
  // shifted down one row, two zero columns on the right.
  Node n;
  n.op = OpKind::conv;
  n.name = "conv";
  n.window.pad_t = 1;
  n.window.pad_r = 2;
  n.params.push_back({"w", Tensor::full({1, 1, 1, 1}, 1.0f)});
  const Tensor y = run_reference(single(n), iota({1, 1, 2, 2}));
  ASSERT_EQ(y.shape(), (Shape{1, 1, 3, 4}));
  EXPECT_EQ(floats(y), (std::vector<float>{0, 0, 0, 0, 0, 1, 0, 0, 2, 3, 0, 0}));
}

TEST(ReferenceRunOps, SubsampleAndPadChannels) {
  Node s;
  s.op = OpKind::subsample;
  s.name = "sub";
  s.window.stride_h = s.window.stride_w = 2;
  const Tensor y = run_reference(single(s), iota({1, 1, 3, 3}));
  EXPECT_EQ(floats(y), (std::vector<float>{0, 2, 6, 8}));

  Node p;
  p.op = OpKind::pad_channels;
  p.name = "pad";
  p.pads = {1, 2};
  const Tensor z = run_reference(single(p), iota({1, 1, 1, 2}));
  ASSERT_EQ(z.shape(), (Shape{1, 4, 1, 2}));
  EXPECT_EQ(floats(z), (std::vector<float>{0, 0, 0, 1, 0, 0, 0, 0}));
}

TEST(ReferenceRunOps, WrongInputNamesTheNode) {
  Node n;
  n.op = OpKind::conv;
  n.name = "stem";
  n.params.push_back({"stem.weight", Tensor::full({2, 3, 1, 1}, 1.0f)});
  try {
    run_reference(single(n), iota({1, 4, 2, 2}));
    FAIL() << "expected resnet::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("stem"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace resnet::infer
