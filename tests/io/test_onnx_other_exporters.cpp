// ONNX graphs as exporters other than torch write them (MXNet's Model Zoo files, tf2onnx,
// Keras): BatchNorm written as Mul and Add, input normalisation as Sub and Div, the global
// pool as ReduceMean, Squeeze before the classifier, Clip as a ReLU. Each imports to what
// the torch-style form computes, the compiled model agrees with the reference run (so the
// folds into the convolutions are right), and what is no per-channel affine, pool or
// flatten becomes the tensor op that computes it.

#include <gtest/gtest.h>

#include <cmath>

#include "cli/cli_runner.h"
#include "onnx_import_fixture.h"
#include "onnx_model_builder.h"
#include "resnet/api/model_loading.h"
#include "resnet/infer/compiled_model.h"
#include "resnet/io/npy.h"

namespace resnet::io {
namespace {

using infer::OpKind;
using testing::OnnxBuilder;
using testing::OnnxFeatures;
using testing::set_float;
using testing::set_int;
using testing::set_ints;

class OnnxOtherExporters : public OnnxFeatures {
 protected:
  // The compiled model (passes and folds) computes what the reference run does.
  void expect_compiled_matches_reference(const OnnxBuilder& b, const Shape& input) {
    const Tensor x = testing::deterministic_tensor(7, "input", input);
    const infer::Graph g = import(b);
    const Tensor want = infer::run_reference(g, x);
    infer::CompiledModel compiled(g);
    const Tensor got = compiled.run(x);
    ASSERT_EQ(got.shape(), want.shape());
    EXPECT_LE(max_abs_diff(got, want), 1e-5f * max_abs(want));
  }

  // conv (3 -> 4, 3x3, pads 1) writing "c", then `tail` nodes, on a [1, 3, 6, 6] input.
  OnnxBuilder conv_then(int64_t opset = 13) {
    OnnxBuilder b(opset, {1, 3, 6, 6});
    b.initializer("w", weights("w", {4, 3, 3, 3}));
    set_ints(b.node("Conv", {"input", "w"}, {"c"}, "conv"), "pads", {1, 1, 1, 1});
    return b;
  }

  std::string path() { return dir_.file("m.onnx"); }
};

TEST_F(OnnxOtherExporters, BatchNormAsMulAndAddFoldsIntoTheConv) {
  const Tensor gamma = weights("gamma", {1, 4, 1, 1}), beta = weights("beta", {4, 1, 1});
  OnnxBuilder written_out = conv_then();
  written_out.initializer("gamma", gamma);
  written_out.initializer("beta", beta);
  written_out.node("Mul", {"c", "gamma"}, {"m"});
  written_out.node("Add", {"beta", "m"}, {"a"});  // the constant first: either order
  written_out.node("Relu", {"a"}, {"output"});
  OnnxBuilder bn = conv_then();
  bn.initializer("s", gamma.reshape({4}));
  bn.initializer("b", beta.reshape({4}));
  bn.initializer("m", Tensor({4}));
  bn.initializer("v", Tensor::full({4}, 1.0f));
  set_float(bn.node("BatchNormalization", {"c", "s", "b", "m", "v"}, {"bn"}), "epsilon", 0.0f);
  bn.node("Relu", {"bn"}, {"output"});
  const infer::Graph g = import(written_out);
  ASSERT_EQ(g.nodes.size(), 4u);
  EXPECT_EQ(g.nodes[1].op, OpKind::batch_norm);
  EXPECT_EQ(g.nodes[2].op, OpKind::batch_norm);
  expect_same(written_out, bn, {2, 3, 6, 6});
  expect_compiled_matches_reference(written_out, {2, 3, 6, 6});
}

TEST_F(OnnxOtherExporters, InputNormalisationAsSubAndDiv) {
  OnnxBuilder b(13, {1, 3, 5, 5});
  b.initializer("mean", Tensor::from_vector({1, 3, 1, 1}, {0.485f, 0.456f, 0.406f}));
  b.initializer("std", Tensor::from_vector({1, 3, 1, 1}, {0.229f, 0.224f, 0.225f}));
  b.initializer("w", weights("w", {2, 3, 3, 3}));
  b.node("Sub", {"input", "mean"}, {"centred"});
  b.node("Div", {"centred", "std"}, {"scaled"});
  b.node("Conv", {"scaled", "w"}, {"output"});
  const Tensor x = testing::deterministic_tensor(2, "x", {1, 3, 5, 5});
  Tensor normalised = x.clone();
  const float mean[] = {0.485f, 0.456f, 0.406f}, std[] = {0.229f, 0.224f, 0.225f};
  for (int64_t i = 0; i < normalised.numel(); ++i)
    normalised.f32()[i] = (normalised.f32()[i] - mean[i / 25]) / std[i / 25];
  OnnxBuilder direct(13, {1, 3, 5, 5});
  direct.initializer("w", weights("w", {2, 3, 3, 3}));
  direct.node("Conv", {"input", "w"}, {"output"});
  const Tensor got = infer::run_reference(import(b), x);
  const Tensor want = infer::run_reference(import(direct), normalised);
  EXPECT_LE(max_abs_diff(got, want), 1e-5f * max_abs(want));
  expect_compiled_matches_reference(b, {2, 3, 5, 5});
}

TEST_F(OnnxOtherExporters, ConstantMinusXAndOneValueForAllChannels) {
  OnnxBuilder b = conv_then();
  b.initializer("one", Tensor::full({}, 1.0f));
  b.initializer("half", Tensor::full({1}, 0.5f));
  b.node("Sub", {"one", "c"}, {"s"});
  b.node("Mul", {"s", "half"}, {"output"});
  const Tensor x = testing::deterministic_tensor(4, "x", {1, 3, 6, 6});
  const Tensor y = infer::run_reference(import(b), x);
  OnnxBuilder conv_only = conv_then();
  conv_only.graph().mutable_node(0)->set_output(0, "output");
  const Tensor c = infer::run_reference(import(conv_only), x);
  for (int64_t i = 0; i < y.numel(); ++i)
    ASSERT_NEAR(y.f32()[i], (1.0f - c.f32()[i]) * 0.5f, 1e-6f) << i;
  expect_compiled_matches_reference(b, {1, 3, 6, 6});
}

TEST_F(OnnxOtherExporters, WhatIsNoPerChannelAffineIsArithmetic) {
  OnnxBuilder two = conv_then();
  two.node("Mul", {"c", "c"}, {"output"}, "square");
  EXPECT_IO_ERROR(read_onnx(two.save(path())), "node 'square' (Mul, opset 13)",
                  "two computed inputs");
  const Tensor x = testing::deterministic_tensor(7, "input", {1, 3, 6, 6});
  OnnxBuilder conv_only = conv_then();
  conv_only.graph().mutable_node(0)->set_output(0, "output");
  const Tensor c = infer::run_reference(import(conv_only), x);
  // Broadcast along W, not channels: x * k[w].
  OnnxBuilder along_w = conv_then();
  const Tensor k = weights("k", {6});
  along_w.initializer("k", k);
  along_w.node("Mul", {"c", "k"}, {"output"}, "mul");
  EXPECT_EQ(import(along_w).nodes.back().op, OpKind::mul_constant);
  Tensor y = infer::run_reference(import(along_w), x);
  for (int64_t i = 0; i < y.numel(); ++i) ASSERT_FLOAT_EQ(y.f32()[i], c.f32()[i] * k.f32()[i % 6]);
  expect_compiled_matches_reference(along_w, {1, 3, 6, 6});
  // A constant divided by the computed value: 2 / x.
  OnnxBuilder inverse = conv_then();
  inverse.initializer("k", Tensor::full({}, 2.0f));
  inverse.node("Div", {"k", "c"}, {"output"}, "div");
  EXPECT_TRUE(import(inverse).nodes.back().constant_first);
  y = infer::run_reference(import(inverse), x);
  for (int64_t i = 0; i < y.numel(); ++i) ASSERT_FLOAT_EQ(y.f32()[i], 2.0f / c.f32()[i]);
  // A division by a zero channel is IEEE's: inf or nan there, exact elsewhere.
  OnnxBuilder zero = conv_then();
  zero.initializer("k", Tensor::from_vector({4, 1, 1}, {1, 2, 0, 4}));
  zero.node("Div", {"c", "k"}, {"output"}, "div");
  EXPECT_EQ(import(zero).nodes.back().op, OpKind::div_constant);
  infer::CompiledModel compiled(import(zero));
  y = compiled.run(x);
  for (int64_t i = 0; i < y.numel(); ++i) {
    const int64_t ch = (i / 36) % 4;
    if (ch == 2)
      ASSERT_TRUE(std::isinf(y.f32()[i]) || std::isnan(y.f32()[i])) << i;
    else
      ASSERT_NEAR(y.f32()[i], c.f32()[i] / (ch == 3 ? 4.0f : ch + 1.0f), 1e-6f) << i;
  }
}

TEST_F(OnnxOtherExporters, ReduceMeanOverHeightAndWidthIsTheGlobalPool) {
  OnnxBuilder pooled(13, {1, 3, 4, 5});
  pooled.node("GlobalAveragePool", {"input"}, {"g"});
  pooled.node("Flatten", {"g"}, {"output"});
  for (int64_t opset : {13, 18}) {
    OnnxBuilder b(opset, {1, 3, 4, 5});
    auto& mean = b.node(
        "ReduceMean",
        opset < 18 ? std::vector<std::string>{"input"} : std::vector<std::string>{"input", "axes"},
        {"output"}, "mean");
    if (opset < 18) {
      set_ints(mean, "axes", {-1, 2});
    } else {
      b.ints("axes", {2, 3});
    }
    set_int(mean, "keepdims", 0);
    expect_same(b, pooled, {2, 3, 4, 5});
  }
  // Over the channels: a reduce_mean op, not the pool.
  OnnxBuilder channels(13, {1, 3, 4, 5});
  set_ints(channels.node("ReduceMean", {"input"}, {"output"}, "mean"), "axes", {1});
  EXPECT_EQ(import(channels).nodes.back().op, OpKind::reduce_mean);
  const Tensor x = testing::deterministic_tensor(2, "x", {2, 3, 4, 5});
  const Tensor y = infer::run_reference(import(channels), x);
  ASSERT_EQ(y.shape(), (Shape{2, 1, 4, 5}));
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t hw = 0; hw < 20; ++hw) {
      double sum = 0;
      for (int64_t ch = 0; ch < 3; ++ch) sum += x.f32()[(n * 3 + ch) * 20 + hw];
      ASSERT_NEAR(y.f32()[n * 20 + hw], sum / 3, 1e-6) << n << " " << hw;
    }
  expect_compiled_matches_reference(channels, {2, 3, 4, 5});
}

TEST_F(OnnxOtherExporters, SqueezeAfterThePoolIsAFlatten) {
  for (int64_t opset : {11, 13}) {
    OnnxBuilder b(opset, {1, 3, 4, 4});
    b.node("GlobalAveragePool", {"input"}, {"g"});
    auto& squeeze =
        b.node("Squeeze",
               opset < 13 ? std::vector<std::string>{"g"} : std::vector<std::string>{"g", "axes"},
               {"output"});
    if (opset < 13) {
      set_ints(squeeze, "axes", {2, 3});
    } else {
      b.ints("axes", {3, 2});
    }
    const infer::Graph g = import(b);
    ASSERT_EQ(g.nodes.size(), 2u);
    EXPECT_EQ(g.nodes[1].op, OpKind::flatten);
  }
  OnnxBuilder wide(13, {1, 3, 4, 4});
  wide.ints("axes", {2, 3});
  wide.node("Squeeze", {"input", "axes"}, {"output"}, "squeeze");
  EXPECT_IO_ERROR(read_onnx(wide.save(path())), "node 'squeeze' (Squeeze, opset 13)",
                  "expected size 1 at axis 2 of [1, 3, 4, 4]");
}

TEST_F(OnnxOtherExporters, FinalSoftmaxGivesProbabilities) {
  for (int64_t opset : {11, 13}) {  // default axis 1, then -1: the classes either way
    OnnxBuilder b(opset, {1, 3, 4, 4});
    b.node("GlobalAveragePool", {"input"}, {"g"});
    b.node("Flatten", {"g"}, {"f"});
    b.initializer("w", weights("w", {5, 3}));
    b.initializer("b", weights("b", {5}));
    set_int(b.node("Gemm", {"f", "w", "b"}, {"logits"}), "transB", 1);
    b.node("Softmax", {"logits"}, {"output"});
    const infer::Graph g = import(b);
    ASSERT_EQ(g.nodes.back().op, OpKind::softmax);
    const Tensor p = infer::run_reference(g, testing::deterministic_tensor(3, "x", {2, 3, 4, 4}));
    ASSERT_EQ(p.shape(), (Shape{2, 5}));
    for (int64_t r = 0; r < 2; ++r) {
      double sum = 0.0;
      for (int64_t j = 0; j < 5; ++j) sum += p.f32()[r * 5 + j];
      EXPECT_NEAR(sum, 1.0, 1e-6);
    }
    expect_compiled_matches_reference(b, {2, 3, 4, 4});
  }
  OnnxBuilder over_batch(13, {1, 3, 4, 4});
  over_batch.node("GlobalAveragePool", {"input"}, {"g"});
  over_batch.node("Flatten", {"g"}, {"f"});
  set_int(over_batch.node("Softmax", {"f"}, {"output"}, "softmax"), "axis", 0);
  const Tensor p =
      infer::run_reference(import(over_batch), testing::deterministic_tensor(3, "x", {2, 3, 4, 4}));
  for (int64_t j = 0; j < 3; ++j) EXPECT_NEAR(p.f32()[j] + p.f32()[3 + j], 1.0, 1e-6);
  expect_compiled_matches_reference(over_batch, {2, 3, 4, 4});
}

// tf2onnx's layout: an NHWC input read through a Transpose to NCHW, the pool as
// ReduceMean, the classifier as MatMul + Add, a final Softmax. The graph takes NCHW.
OnnxBuilder tf2onnx_style() {
  OnnxBuilder tf(13, {1, 6, 5, 3});
  auto& t = tf.node("Transpose", {"input"}, {"nchw"});
  set_ints(t, "perm", {0, 3, 1, 2});
  tf.initializer("w", testing::deterministic_tensor(3, "w", {4, 3, 3, 3}));
  set_ints(tf.node("Conv", {"nchw", "w"}, {"c"}), "pads", {1, 1, 1, 1});
  tf.node("Relu", {"c"}, {"r"});
  auto& mean = tf.node("ReduceMean", {"r"}, {"m"});
  set_ints(mean, "axes", {2, 3});
  set_int(mean, "keepdims", 0);
  tf.initializer("fc.w", testing::deterministic_tensor(3, "fc.w", {4, 5}));
  tf.initializer("fc.b", testing::deterministic_tensor(3, "fc.b", {5}));
  tf.node("MatMul", {"m", "fc.w"}, {"mm"});
  tf.node("Add", {"mm", "fc.b"}, {"logits"});
  tf.node("Softmax", {"logits"}, {"output"});
  return tf;
}

TEST_F(OnnxOtherExporters, NhwcInputThroughATransposeIsTakenAsNchw) {
  const OnnxBuilder tf = tf2onnx_style();
  OnnxBuilder torch(13, {1, 3, 6, 5});
  torch.initializer("w", weights("w", {4, 3, 3, 3}));
  set_ints(torch.node("Conv", {"input", "w"}, {"c"}), "pads", {1, 1, 1, 1});
  torch.node("Relu", {"c"}, {"r"});
  torch.node("GlobalAveragePool", {"r"}, {"g"});
  torch.node("Flatten", {"g"}, {"f"});
  torch.initializer("fc.w", weights("fc.w", {4, 5}));
  torch.initializer("fc.b", weights("fc.b", {5}));
  torch.node("MatMul", {"f", "fc.w"}, {"mm"});
  torch.node("Add", {"mm", "fc.b"}, {"logits"});
  torch.node("Softmax", {"logits"}, {"output"});
  expect_same(tf, torch, {2, 3, 6, 5});
  expect_compiled_matches_reference(tf, {2, 3, 6, 5});
  EXPECT_EQ(api::load_inference_model(tf.save(path()), "", {}).in_channels, 3);
  // A Transpose anywhere else is a transpose op.
  OnnxBuilder other(13, {1, 3, 6, 5});
  set_ints(other.node("Transpose", {"input"}, {"output"}, "t"), "perm", {0, 2, 3, 1});
  EXPECT_EQ(import(other).nodes.back().op, OpKind::transpose);
  const Tensor x = testing::deterministic_tensor(2, "x", {1, 3, 6, 5});
  const Tensor y = infer::run_reference(import(other), x);
  ASSERT_EQ(y.shape(), (Shape{1, 6, 5, 3}));
  EXPECT_EQ(y.f32()[(4 * 5 + 2) * 3 + 1], x.f32()[(1 * 6 + 4) * 5 + 2]);
  expect_compiled_matches_reference(other, {1, 3, 6, 5});
}

// `resnet run` takes such a file's own arrays, NHWC, and refuses NCHW ones in one line.
TEST_F(OnnxOtherExporters, RunTakesTheNhwcArraysTheFileDeclares) {
  const std::string model = tf2onnx_style().save(dir_.file("tf.onnx"));
  const Tensor nchw = testing::deterministic_tensor(8, "input", {2, 3, 6, 5});
  Tensor nhwc({2, 6, 5, 3});
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t h = 0; h < 6; ++h)
        for (int64_t w = 0; w < 5; ++w)
          nhwc.f32()[((n * 6 + h) * 5 + w) * 3 + c] = nchw.f32()[((n * 3 + c) * 6 + h) * 5 + w];
  write_npy(dir_.file("x.npy"), nhwc);
  const auto r = testing::run_cli("run --model " + model + " --input " + dir_.file("x.npy") +
                                  " --output " + dir_.file("y.npy"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Tensor want = infer::run_reference(import(tf2onnx_style()), nchw);
  EXPECT_LE(max_abs_diff(read_npy(dir_.file("y.npy")), want), 1e-5f * max_abs(want));
  write_npy(dir_.file("x.npy"), nchw);
  const auto wrong = testing::run_cli("run --model " + model + " --input " + dir_.file("x.npy") +
                                      " --output " + dir_.file("y.npy"));
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_NE(wrong.err.find("expected a 4-D input [N, H, W, 3]"), std::string::npos) << wrong.err;
  EXPECT_NE(wrong.err.find("declared NHWC"), std::string::npos) << wrong.err;
}

}  // namespace
}  // namespace resnet::io
