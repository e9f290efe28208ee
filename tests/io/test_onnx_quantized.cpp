// Quantized ONNX models: QDQ (QuantizeLinear/DequantizeLinear around float operators, as
// ONNX Runtime's quantizer writes them) and QLinear operators (QLinearConv, QLinearAdd,
// ...). The float graph is what the file means without rounding; int8 inference runs on
// the file's own grids, which is checked against a simulation of the file's integer
// arithmetic on data no calibration saw.

#include <gtest/gtest.h>

#include <cmath>

#include "onnx_import_fixture.h"
#include "onnx_model_builder.h"
#include "resnet/infer/calibration.h"
#include "resnet/infer/compiled_model.h"

namespace resnet::io {
namespace {

using infer::OpKind;
using testing::OnnxBuilder;
using testing::OnnxFeatures;
using testing::set_int;
using testing::set_ints;
constexpr auto kInt8 = onnx::TensorProto_DataType_INT8;
constexpr auto kInt32 = onnx::TensorProto_DataType_INT32;

// One 3 -> 4 convolution (3x3, pads 1) on [1, 3, 6, 6]: INT8 weights with a step per
// output channel, an INT32 bias on the step input_scale * weight_step, the input on a
// symmetric INT8 grid and the output on [0, 255 * kOutScale] (zero point -128): the
// ReLU that quantizers drop, leaving its range to the grid.
constexpr float kInScale = 0.02f, kOutScale = 0.05f;
const std::vector<float> kWeightSteps{0.01f, 0.02f, 0.015f, 0.005f};
const std::vector<int32_t> kBias{100, -200, 50, 0};

std::vector<int32_t> weight_ints() {
  std::vector<int32_t> q(4 * 3 * 3 * 3);
  for (size_t i = 0; i < q.size(); ++i) q[i] = static_cast<int32_t>((i * 37) % 255) - 127;
  return q;
}

Tensor real_weight() {
  Tensor w({4, 3, 3, 3});
  const std::vector<int32_t> q = weight_ints();
  for (int64_t i = 0; i < w.numel(); ++i)
    w.f32()[i] = static_cast<float>(q[i]) * kWeightSteps[i / 27];
  return w;
}

Tensor real_bias() {
  Tensor b({4});
  for (int64_t o = 0; o < 4; ++o)
    b.f32()[o] = static_cast<float>(static_cast<double>(kBias[o]) * kInScale * kWeightSteps[o]);
  return b;
}

void add_grids(OnnxBuilder& b) {
  b.initializer("in_scale", Tensor::from_vector({}, {kInScale}));
  b.integers("in_zero", kInt8, {}, {0});
  b.initializer("out_scale", Tensor::from_vector({}, {kOutScale}));
  b.integers("out_zero", kInt8, {}, {-128});
  b.integers("w_q", kInt8, {4, 3, 3, 3}, weight_ints());
  b.initializer("w_scale", Tensor::from_vector({4}, kWeightSteps));
  b.integers("w_zero", kInt8, {4}, {0, 0, 0, 0});
  b.integers("b_q", kInt32, {4}, kBias);
}

class OnnxQuantized : public OnnxFeatures {
 protected:
  OnnxBuilder qdq_conv() {
    OnnxBuilder b(13, {1, 3, 6, 6});
    add_grids(b);
    Tensor b_scale({4});
    for (int64_t o = 0; o < 4; ++o) b_scale.f32()[o] = kInScale * kWeightSteps[o];
    b.initializer("b_scale", b_scale);
    b.integers("b_zero", kInt32, {4}, {0, 0, 0, 0});
    b.node("QuantizeLinear", {"input", "in_scale", "in_zero"}, {"xq"});
    b.node("DequantizeLinear", {"xq", "in_scale", "in_zero"}, {"x"});
    set_int(b.node("DequantizeLinear", {"w_q", "w_scale", "w_zero"}, {"w"}), "axis", 0);
    set_int(b.node("DequantizeLinear", {"b_q", "b_scale", "b_zero"}, {"bias"}), "axis", 0);
    set_ints(b.node("Conv", {"x", "w", "bias"}, {"c"}, "conv"), "pads", {1, 1, 1, 1});
    b.node("QuantizeLinear", {"c", "out_scale", "out_zero"}, {"cq"});
    b.node("DequantizeLinear", {"cq", "out_scale", "out_zero"}, {"output"});
    return b;
  }

  OnnxBuilder qlinear_conv() {
    OnnxBuilder b(13, {1, 3, 6, 6});
    add_grids(b);
    b.node("QuantizeLinear", {"input", "in_scale", "in_zero"}, {"xq"});
    set_ints(b.node("QLinearConv",
                    {"xq", "in_scale", "in_zero", "w_q", "w_scale", "w_zero", "out_scale",
                     "out_zero", "b_q"},
                    {"cq"}, "conv"),
             "pads", {1, 1, 1, 1});
    b.node("DequantizeLinear", {"cq", "out_scale", "out_zero"}, {"output"});
    return b;
  }

  // The float model the files mean: the dequantized weights, then the dropped ReLU.
  OnnxBuilder float_conv() {
    OnnxBuilder b(13, {1, 3, 6, 6});
    b.initializer("w", real_weight());
    b.initializer("bias", real_bias());
    set_ints(b.node("Conv", {"input", "w", "bias"}, {"c"}, "conv"), "pads", {1, 1, 1, 1});
    b.node("Relu", {"c"}, {"output"});
    return b;
  }

  std::string path() { return dir_.file("m.onnx"); }
};

// `x` rounded onto the grid real = (q - zero) * scale, q in [lo, hi].
Tensor on_grid(const Tensor& x, float scale, int zero, int lo, int hi) {
  Tensor out = x.clone();
  for (float& v : out.values()) {
    const float q = std::clamp(std::nearbyint(v / scale) + zero, float(lo), float(hi));
    v = (q - zero) * scale;
  }
  return out;
}

TEST_F(OnnxQuantized, QdqConvImportsTheDequantizedWeightsTheDroppedReluAndTheFileGrids) {
  const infer::Graph g = import(qdq_conv());
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(g.nodes[0].op, OpKind::conv);
  EXPECT_EQ(g.nodes[1].op, OpKind::relu);  // the grid [0, 255 * scale] clamps at 0
  EXPECT_EQ(max_abs_diff(g.nodes[0].params[0].value, real_weight()), 0.f);
  EXPECT_LE(max_abs_diff(g.nodes[0].params[1].value, real_bias()), 1e-9f);
  EXPECT_EQ(g.nodes[0].weight_steps, kWeightSteps);
  ASSERT_TRUE(g.values[0].quant.has_value());
  EXPECT_EQ(g.values[0].quant->scale, kInScale);
  const std::optional<infer::Calibration> own = infer::Calibration::from_graph(g);
  ASSERT_TRUE(own.has_value());
  EXPECT_FLOAT_EQ(own->max_abs.at("input"), 127 * kInScale);  // symmetric: the file's step
  EXPECT_FLOAT_EQ(own->max_abs.at(g.values[g.nodes[1].output].name), 255 * kOutScale);
  expect_same(qdq_conv(), float_conv(), {2, 3, 6, 6});
}

TEST_F(OnnxQuantized, QLinearConvIsTheQdqGraphItMeans) {
  const infer::Graph g = import(qlinear_conv());
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(g.nodes[1].op, OpKind::relu);
  EXPECT_EQ(g.nodes[0].weight_steps, kWeightSteps);
  expect_same(qlinear_conv(), qdq_conv(), {2, 3, 6, 6});
}

// int8 on the file's grids: the input on its step, the weights on theirs, the output
// rounded onto [0, 255] * kOutScale. A simulation of that arithmetic in float agrees
// element for element but for rare ties, on inputs unrelated to any calibration.
TEST_F(OnnxQuantized, Int8RunsOnTheFileGrids) {
  for (const OnnxBuilder& b : {qdq_conv(), qlinear_conv()}) {
    const infer::Graph g = import(b);
    infer::CompileOptions options;
    options.precision = infer::Precision::int8;
    options.calibration = std::make_shared<infer::Calibration>(*infer::Calibration::from_graph(g));
    infer::CompiledModel int8(g, options);
    const Tensor x = testing::deterministic_tensor(11, "unseen", {2, 3, 6, 6});
    const Tensor got = int8.run(x);
    const Tensor input = on_grid(x, kInScale, 0, -127, 127);
    const Tensor want =
        on_grid(infer::run_reference(import(float_conv()), input), kOutScale, -128, -128, 127);
    ASSERT_EQ(got.shape(), want.shape());
    int64_t off_grid = 0, one_step = 0;
    for (int64_t i = 0; i < got.numel(); ++i) {
      const float d = std::abs(got.f32()[i] - want.f32()[i]);
      off_grid += d > 1e-4f * kOutScale && std::abs(d - kOutScale) > 1e-4f * kOutScale;
      one_step += d > 1e-4f * kOutScale;
    }
    EXPECT_EQ(off_grid, 0) << "values differing by other than one step of the output grid";
    EXPECT_LE(one_step, got.numel() / 50) << "ties rounded the other way, of " << got.numel();
  }
}

TEST_F(OnnxQuantized, QLinearAddPoolAndMatMulAreTheirQdqGraphs) {
  // conv -> QLinearAdd(conv, conv) -> QLinearGlobalAveragePool -> Flatten -> QLinearMatMul
  // -> DequantizeLinear -> Add of the bias: a classifier head as the Model Zoo writes it.
  auto head = [&](bool qlinear) {
    OnnxBuilder b = qlinear ? qlinear_conv() : qdq_conv();
    b.graph().mutable_node()->RemoveLast();  // the output's DequantizeLinear
    b.model.add_opset_import()->set_domain("com.microsoft");
    b.model.mutable_opset_import(1)->set_version(1);
    b.initializer("s2", Tensor::from_vector({}, {0.1f}));
    b.integers("z2", kInt8, {}, {-128});
    b.integers("fc_q", kInt8, {4, 5},
               {1, -2, 3, 4, -5, 6, 7, -8, 9, 10, -11, 12, 13, -14, 15, 16, -17, 18, 19, -20});
    b.initializer("fc_s", Tensor::from_vector({5}, {0.01f, 0.02f, 0.03f, 0.04f, 0.05f}));
    b.integers("fc_z", kInt8, {5}, {0, 0, 0, 0, 0});
    b.initializer("fc_bias", Tensor::from_vector({5}, {0.1f, -0.2f, 0.3f, 0.f, 0.5f}));
    b.initializer("s3", Tensor::from_vector({}, {0.03f}));
    b.integers("z3", kInt8, {}, {0});
    if (qlinear) {
      b.node("QLinearAdd",
             {"cq", "out_scale", "out_zero", "cq", "out_scale", "out_zero", "s2", "z2"}, {"aq"})
          .set_domain("com.microsoft");
      set_int(b.node("QLinearGlobalAveragePool", {"aq", "s2", "z2", "s2", "z2"}, {"pq"}),
              "channels_last", 0);
      b.graph().mutable_node(b.graph().node_size() - 1)->set_domain("com.microsoft");
      b.node("Flatten", {"pq"}, {"fq"});
      b.node("QLinearMatMul", {"fq", "s2", "z2", "fc_q", "fc_s", "fc_z", "s3", "z3"}, {"mq"});
    } else {
      b.node("DequantizeLinear", {"cq", "out_scale", "out_zero"}, {"c1"});
      b.node("Add", {"c1", "c1"}, {"a"});
      b.node("QuantizeLinear", {"a", "s2", "z2"}, {"aq"});
      b.node("DequantizeLinear", {"aq", "s2", "z2"}, {"a1"});
      b.node("GlobalAveragePool", {"a1"}, {"p"});
      b.node("QuantizeLinear", {"p", "s2", "z2"}, {"pq"});
      b.node("DequantizeLinear", {"pq", "s2", "z2"}, {"p1"});
      b.node("Flatten", {"p1"}, {"f"});
      set_int(b.node("DequantizeLinear", {"fc_q", "fc_s", "fc_z"}, {"fc_w"}), "axis", 1);
      b.node("MatMul", {"f", "fc_w"}, {"m"});
      b.node("QuantizeLinear", {"m", "s3", "z3"}, {"mq"});
    }
    b.node("DequantizeLinear", {"mq", "s3", "z3"}, {"m1"});
    b.node("Add", {"m1", "fc_bias"}, {"output"});
    return b;
  };
  const infer::Graph g = import(head(true));
  EXPECT_EQ(g.nodes.back().op, OpKind::linear);  // the bias folds into the MatMul
  EXPECT_EQ(g.nodes.back().params.size(), 2u);
  expect_same(head(true), head(false), {2, 3, 6, 6});
}

TEST_F(OnnxQuantized, WhatTheFileMustNotDoIsRefusedInOneLine) {
  OnnxBuilder mismatched = qdq_conv();
  mismatched.graph().mutable_node(1)->set_input(1, "out_scale");
  EXPECT_IO_ERROR(read_onnx(mismatched.save(path())), path(), "dequantizes with scale 0.05",
                  "was quantized with scale 0.02");

  OnnxBuilder integers_read = qdq_conv();
  integers_read.graph().mutable_node(4)->set_input(0, "xq");  // the Conv reads the integers
  EXPECT_IO_ERROR(read_onnx(integers_read.save(path())), path(), "'xq'",
                  "the integers of a QuantizeLinear");

  OnnxBuilder per_axis = qdq_conv();
  per_axis.graph().mutable_node(0)->set_input(1, "w_scale");
  EXPECT_IO_ERROR(read_onnx(per_axis.save(path())), path(), "expected one output scale", "found 4");

  OnnxBuilder float_data = qdq_conv();
  float_data.initializer("wf", real_weight());
  float_data.graph().mutable_node(2)->set_input(0, "wf");
  EXPECT_IO_ERROR(read_onnx(float_data.save(path())), path(), "quantized data",
                  "expected INT8, UINT8 or INT32", "FLOAT");

  OnnxBuilder wrong_zero = qdq_conv();
  wrong_zero.integers("w_zero32", kInt32, {4}, {0, 0, 0, 0});
  wrong_zero.graph().mutable_node(2)->set_input(2, "w_zero32");
  EXPECT_IO_ERROR(read_onnx(wrong_zero.save(path())), path(), "the zero point is INT32",
                  "the data 'w_q' INT8");

  OnnxBuilder constant_q = qdq_conv();
  constant_q.initializer("wf", real_weight());
  constant_q.node("QuantizeLinear", {"wf", "in_scale", "in_zero"}, {"wq2"});
  EXPECT_IO_ERROR(read_onnx(constant_q.save(path())), path(), "quantizing the constant 'wf'");

  OnnxBuilder lying = qdq_conv();
  lying.graph().mutable_initializer(4)->add_dims(1000);  // w_q claims [4, 3, 3, 3, 1000]
  EXPECT_IO_ERROR(read_onnx(lying.save(path())), path(), "w_q", "hold 108000 elements",
                  "int32_data holds 108");
}

}  // namespace
}  // namespace resnet::io
