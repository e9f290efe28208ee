// ONNX import across opsets 7 to 18: where an operator changed within that range (Pad and
// Slice attributes before inputs, Gemm's required C, BatchNormalization's `spatial`, Clip's
// bounds, Dropout's training_mode), a model written at the older opset imports to what the
// newer form computes, and what the spec allows but we do not run is refused in one line.

#include <gtest/gtest.h>

#include <limits>

#include "onnx_import_fixture.h"
#include "onnx_model_builder.h"
#include "resnet/api/model_loading.h"
#include "resnet/infer/compiled_model.h"

namespace resnet::io {
namespace {

using infer::OpKind;
using testing::OnnxBuilder;
using testing::OnnxFeatures;
using testing::set_float;
using testing::set_int;
using testing::set_ints;

class OnnxOpsets : public OnnxFeatures {
 protected:
  OnnxBuilder zoo_v2();

  // GlobalAveragePool, Flatten and Gemm (transB) of `x` into "output": both layouts' head.
  void classifier_head(OnnxBuilder& b, const std::string& x) {
    b.node("GlobalAveragePool", {x}, {"g"});
    b.node("Flatten", {"g"}, {"f"});
    b.initializer("fc.w", weights("fc.w", {5, 4}));
    b.initializer("fc.b", weights("fc.b", {5}));
    set_int(b.node("Gemm", {"f", "fc.w", "fc.b"}, {"output"}, "fc"), "transB", 1);
  }

  // A residual network in the ONNX Model Zoo's v1 layout (Conv with bias, then
  // BatchNormalization, Relu, MaxPool, one basic block, GlobalAveragePool, Flatten, Gemm),
  // written as an exporter of `opset` writes it.
  OnnxBuilder zoo_v1(int64_t opset) {
    OnnxBuilder b(opset, {1, 3, 9, 9});
    b.initializer("conv0.w", weights("conv0.w", {4, 3, 3, 3}));
    b.initializer("conv0.b", weights("conv0.b", {4}));
    set_ints(b.node("Conv", {"input", "conv0.w", "conv0.b"}, {"c0"}), "pads", {1, 1, 1, 1});
    batch_norm(b, opset, "bn0", "c0", {"b0"});
    b.node("Relu", {"b0"}, {"r0"});
    auto& pool = b.node("MaxPool", {"r0"}, {"p0"});
    set_ints(pool, "kernel_shape", {3, 3});
    set_ints(pool, "strides", {2, 2});
    set_ints(pool, "pads", {1, 1, 1, 1});
    b.initializer("conv1.w", weights("conv1.w", {4, 4, 3, 3}));
    set_ints(b.node("Conv", {"p0", "conv1.w"}, {"c1"}), "pads", {1, 1, 1, 1});
    batch_norm(b, opset, "bn1", "c1", {"b1"});
    b.node("Add", {"b1", "p0"}, {"sum"});
    b.node("Relu", {"sum"}, {"r1"});
    classifier_head(b, "r1");
    return b;
  }

  // BatchNormalization with positive variances; opsets 7 and 8 carry `spatial` (MXNet's
  // export writes 1) and the momentum attribute.
  void batch_norm(OnnxBuilder& b, int64_t opset, const std::string& name, const std::string& in,
                  const std::vector<std::string>& outputs, int64_t channels = 4,
                  int64_t spatial = 1) {
    b.initializer(name + ".scale", weights(name + ".scale", {channels}));
    b.initializer(name + ".bias", weights(name + ".bias", {channels}));
    b.initializer(name + ".mean", weights(name + ".mean", {channels}));
    b.initializer(name + ".var", Tensor::full({channels}, 0.7f));
    auto& n =
        b.node("BatchNormalization",
               {in, name + ".scale", name + ".bias", name + ".mean", name + ".var"}, outputs, name);
    set_float(n, "epsilon", 1e-5f);
    set_float(n, "momentum", 0.9f);
    if (opset < 9) set_int(n, "spatial", spatial);
  }

  std::string path() { return dir_.file("m.onnx"); }
};

// The Model Zoo's v2 (pre-activation) layout at opset 7: a BatchNormalization on the input
// itself, blocks of BN -> Relu -> Conv with the add before the next block's BN, a
// projection shortcut taken from the pre-activated value, and BN -> Relu before the pool.
OnnxBuilder OnnxOpsets::zoo_v2() {
  OnnxBuilder b(7, {1, 3, 8, 8});
  auto conv = [&](const std::string& name, const std::string& in, const std::string& out, Shape w,
                  int64_t stride, int64_t pad) {
    b.initializer(name + ".w", weights(name + ".w", w));
    auto& n = b.node("Conv", {in, name + ".w"}, {out}, name);
    set_ints(n, "strides", {stride, stride});
    set_ints(n, "pads", {pad, pad, pad, pad});
  };
  batch_norm(b, 7, "bn_data", "input", {"x0"}, 3);
  conv("conv0", "x0", "c0", {4, 3, 3, 3}, 1, 1);
  batch_norm(b, 7, "bn0", "c0", {"b0"});
  b.node("Relu", {"b0"}, {"r0"});
  // Block 1 (identity shortcut): the add's output feeds the next block's BN.
  batch_norm(b, 7, "u1.bn1", "r0", {"u1.b1"});
  b.node("Relu", {"u1.b1"}, {"u1.r1"});
  conv("u1.conv1", "u1.r1", "u1.c1", {4, 4, 3, 3}, 1, 1);
  batch_norm(b, 7, "u1.bn2", "u1.c1", {"u1.b2"});
  b.node("Relu", {"u1.b2"}, {"u1.r2"});
  conv("u1.conv2", "u1.r2", "u1.c2", {4, 4, 3, 3}, 1, 1);
  b.node("Add", {"u1.c2", "r0"}, {"u1.out"});
  // Block 2 (projection shortcut from the pre-activated input, stride 2).
  batch_norm(b, 7, "u2.bn1", "u1.out", {"u2.b1"});
  b.node("Relu", {"u2.b1"}, {"u2.r1"});
  conv("u2.conv1", "u2.r1", "u2.c1", {4, 4, 3, 3}, 2, 1);
  batch_norm(b, 7, "u2.bn2", "u2.c1", {"u2.b2"});
  b.node("Relu", {"u2.b2"}, {"u2.r2"});
  conv("u2.conv2", "u2.r2", "u2.c2", {4, 4, 3, 3}, 1, 1);
  conv("u2.sc", "u2.r1", "u2.s", {4, 4, 1, 1}, 2, 0);
  b.node("Add", {"u2.c2", "u2.s"}, {"u2.out"});
  batch_norm(b, 7, "bn1", "u2.out", {"b1"});
  b.node("Relu", {"b1"}, {"r1"});
  classifier_head(b, "r1");
  return b;
}

TEST_F(OnnxOpsets, ModelZooV2PreActivationLayoutCompilesToWhatTheReferenceComputes) {
  const OnnxBuilder b = zoo_v2();
  const infer::Graph g = import(b);
  const Tensor x = testing::deterministic_tensor(9, "input", {2, 3, 8, 8});
  const Tensor want = infer::run_reference(g, x);
  infer::CompiledModel compiled(g);
  const Tensor got = compiled.run(x);
  ASSERT_EQ(got.shape(), (Shape{2, 5}));
  EXPECT_LE(max_abs_diff(got, want), 1e-5f * max_abs(want));
}

TEST_F(OnnxOpsets, ModelZooV1LayoutAtOpset7ComputesWhatOpset13Does) {
  const infer::Graph g = import(zoo_v1(7));
  EXPECT_EQ(g.nodes.size(), 11u);
  expect_same(zoo_v1(7), zoo_v1(13), {2, 3, 9, 9});
  expect_same(zoo_v1(8), zoo_v1(18), {1, 3, 9, 9});
}

TEST_F(OnnxOpsets, OperatorsOlderThanTheirConvertersAndOpsetsPast18AreRefused) {
  // Opset 6's BatchNormalization has is_test and no running-statistics semantics we read.
  EXPECT_IO_ERROR(read_onnx(zoo_v1(6).save(path())), path(),
                  "node 'bn0' (BatchNormalization, opset 6)", "opset 7 or later");
  EXPECT_IO_ERROR(read_onnx(zoo_v1(19).save(path())), path(), "opset 1 to 18", "found 19");
}

TEST_F(OnnxOpsets, OperatorsUnchangedSinceOpset1ImportAtOpset1) {
  // ONNX's own node tests for GlobalAveragePool are opset-1 models.
  OnnxBuilder b(1, {1, 3, 5, 5});
  b.node("GlobalAveragePool", {"input"}, {"output"});
  OnnxBuilder later(13, {1, 3, 5, 5});
  later.node("GlobalAveragePool", {"input"}, {"output"});
  expect_same(b, later, {1, 3, 5, 5});
}

TEST_F(OnnxOpsets, GemmWithoutCIsRefusedBeforeOpset11) {
  OnnxBuilder b(9, {2, 4, 1, 1});
  b.node("Flatten", {"input"}, {"f"});
  b.initializer("w", weights("w", {3, 4}));
  set_int(b.node("Gemm", {"f", "w"}, {"output"}, "fc"), "transB", 1);
  EXPECT_IO_ERROR(read_onnx(b.save(path())), "node 'fc' (Gemm, opset 9)",
                  "expected 3 input(s), found 2");
  OnnxBuilder later(11, {2, 4, 1, 1});
  later.node("Flatten", {"input"}, {"f"});
  later.initializer("w", weights("w", {3, 4}));
  set_int(later.node("Gemm", {"f", "w"}, {"output"}, "fc"), "transB", 1);
  EXPECT_EQ(import(later).nodes.size(), 2u);
}

TEST_F(OnnxOpsets, BatchNormSpatialZeroIsRefused) {
  OnnxBuilder b(7, {1, 4, 3, 3});
  batch_norm(b, 7, "bn", "input", {"output"}, 4, 0);
  EXPECT_IO_ERROR(read_onnx(b.save(path())), "node 'bn' (BatchNormalization, opset 7)",
                  "expected spatial 1", "found 0");
}

TEST_F(OnnxOpsets, UnreadTrainingOutputsAreAcceptedAndReadOnesRefused) {
  // Opset 7's BatchNormalization may name its running statistics; MaxPool its Indices.
  OnnxBuilder b(8, {1, 4, 4, 4});
  batch_norm(b, 8, "bn", "input", {"y", "mean", "var"});
  auto& pool = b.node("MaxPool", {"y"}, {"output", "indices"}, "pool");
  set_ints(pool, "kernel_shape", {2, 2});
  EXPECT_EQ(import(b).nodes.size(), 2u);
  b.node("Relu", {"mean"}, {"unused"}, "reads_mean");
  EXPECT_IO_ERROR(read_onnx(b.save(path())), "node 'bn' (BatchNormalization, opset 8)",
                  "found also 'mean', which is read");
}

TEST_F(OnnxOpsets, PadAsAnAttributeBeforeOpset11) {
  auto padded = [&](float value) {
    OnnxBuilder b(10, {1, 2, 6, 5});
    b.initializer("w", weights("w", {3, 2, 3, 3}));
    auto& pad = b.node("Pad", {"input"}, {"p"}, "pad");
    set_ints(pad, "pads", {0, 0, 1, 2, 0, 0, 3, 0});
    if (value != 0.0f) set_float(pad, "value", value);
    b.node("Conv", {"p", "w"}, {"output"}, "conv");
    return b;
  };
  OnnxBuilder direct(10, {1, 2, 6, 5});
  direct.initializer("w", weights("w", {3, 2, 3, 3}));
  set_ints(direct.node("Conv", {"input", "w"}, {"output"}, "conv"), "pads", {1, 2, 3, 0});
  expect_same(padded(0.0f), direct, {1, 2, 6, 5});
  EXPECT_IO_ERROR(read_onnx(padded(1.5f).save(path())), "node 'pad' (Pad, opset 10)",
                  "expected a zero value", "1.5");
}

TEST_F(OnnxOpsets, PadOnNamedAxesAtOpset18) {
  OnnxBuilder padded(18, {1, 2, 6, 5});
  padded.initializer("w", weights("w", {3, 2, 3, 3}));
  padded.ints("pads", {1, 2, 3, 0});  // begins of H, W, then ends of H, W
  padded.ints("axes", {-2, 3});
  padded.node("Pad", {"input", "pads", "", "axes"}, {"p"});
  padded.node("Conv", {"p", "w"}, {"output"}, "conv");
  OnnxBuilder direct(18, {1, 2, 6, 5});
  direct.initializer("w", weights("w", {3, 2, 3, 3}));
  set_ints(direct.node("Conv", {"input", "w"}, {"output"}, "conv"), "pads", {1, 2, 3, 0});
  expect_same(padded, direct, {1, 2, 6, 5});
}

TEST_F(OnnxOpsets, SliceAsAttributesBeforeOpset10) {
  OnnxBuilder b(9, {1, 2, 4, 4});
  auto& slice = b.node("Slice", {"input"}, {"s"}, "slice");
  set_ints(slice, "starts", {0, 0});
  set_ints(slice, "ends", {std::numeric_limits<int32_t>::max(), 4});
  set_ints(slice, "axes", {2, 3});
  b.node("Relu", {"s"}, {"output"});
  const infer::Graph g = import(b);
  ASSERT_EQ(g.nodes.size(), 1u);  // the whole tensor: an alias
  auto& cut = b.graph().mutable_node(0)->mutable_attribute(1)->mutable_ints()->at(1);
  cut = 2;
  EXPECT_IO_ERROR(read_onnx(b.save(path())), "node 'slice' (Slice, opset 9)",
                  "expected a slice from 0 to the end");
}

TEST_F(OnnxOpsets, ClipFromZeroWithoutUpperBoundIsRelu) {
  OnnxBuilder relu(13, {1, 2, 3, 3});
  relu.node("Relu", {"input"}, {"output"});
  OnnxBuilder by_attributes(10, {1, 2, 3, 3});
  set_float(by_attributes.node("Clip", {"input"}, {"output"}), "min", 0.0f);
  OnnxBuilder by_inputs(13, {1, 2, 3, 3});
  by_inputs.initializer("zero", Tensor::full({}, 0.0f));
  by_inputs.node("Clip", {"input", "zero"}, {"output"});
  expect_same(by_attributes, relu, {1, 2, 3, 3});
  expect_same(by_inputs, relu, {1, 2, 3, 3});
  EXPECT_EQ(import(by_inputs).nodes[0].op, OpKind::relu);
  OnnxBuilder relu6(13, {1, 2, 3, 3});
  relu6.initializer("zero", Tensor::full({}, 0.0f));
  relu6.initializer("six", Tensor::full({}, 6.0f));
  relu6.node("Clip", {"input", "zero", "six"}, {"output"}, "clip");
  // ReLU6 (and any other bounds) is a clip.
  const infer::Graph clipped = import(relu6);
  ASSERT_EQ(clipped.nodes.back().op, OpKind::clip);
  const Tensor x = testing::deterministic_tensor(5, "x", {2, 2, 3, 3});
  Tensor scaled = x.clone();
  for (int64_t i = 0; i < scaled.numel(); ++i) scaled.f32()[i] *= 20.f;  // reach past 6
  const Tensor y = infer::CompiledModel(clipped).run(scaled);
  for (int64_t i = 0; i < y.numel(); ++i)
    ASSERT_EQ(y.f32()[i], std::min(std::max(scaled.f32()[i], 0.f), 6.f)) << i;
}

TEST_F(OnnxOpsets, DropoutIsAnAliasAtInference) {
  OnnxBuilder old(7, {1, 2, 3, 3});
  set_float(old.node("Dropout", {"input"}, {"d", "mask"}), "ratio", 0.5f);
  old.node("Relu", {"d"}, {"output"});
  EXPECT_EQ(import(old).nodes.size(), 1u);
  auto with_mode = [&](bool training) {
    OnnxBuilder b(13, {1, 2, 3, 3});
    auto* t = b.graph().add_initializer();
    t->set_name("training");
    t->set_data_type(onnx::TensorProto_DataType_BOOL);
    t->add_int32_data(training ? 1 : 0);
    b.initializer("ratio", Tensor::full({}, 0.5f));
    b.node("Dropout", {"input", "ratio", "training"}, {"d"}, "dropout");
    b.node("Relu", {"d"}, {"output"});
    return b;
  };
  EXPECT_EQ(import(with_mode(false)).nodes.size(), 1u);
  EXPECT_IO_ERROR(read_onnx(with_mode(true).save(path())), "node 'dropout' (Dropout, opset 13)",
                  "training_mode false");
}

TEST_F(OnnxOpsets, DeclaredInputChannelsAreHonouredWithoutAConv) {
  OnnxBuilder b(13, {1, 1, 5, 5});
  b.node("Relu", {"input"}, {"output"});
  EXPECT_EQ(api::load_inference_model(b.save(path()), "", {}).in_channels, 1);
  OnnxBuilder symbolic(13, {-1, -1, 5, 5});
  symbolic.initializer("w", weights("w", {2, 4, 3, 3}));
  symbolic.node("Conv", {"input", "w"}, {"output"});
  EXPECT_EQ(api::load_inference_model(symbolic.save(path()), "", {}).in_channels, 4);
}

}  // namespace
}  // namespace resnet::io
