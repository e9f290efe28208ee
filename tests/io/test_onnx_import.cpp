// ONNX import: torchvision exports from PyTorch 1.13 against PyTorch's own output, whole
// networks round-tripped through the ONNX form of our export, and one test per feature of
// the import (folded Pads, MatMul + Add, Reshape, auto_pad, old-style inputs, ...).
//
// The torchvision fixtures (tests/fixtures/onnx/, tools/gen_onnx_fixtures.py) are real
// exports with their initializers' data stripped. Each test refills every FLOAT initializer
// by name (support/deterministic_weights.h onnx_initializer_rule), writes the complete
// model to a temporary .onnx file and reads that with read_onnx, so the whole file path is
// exercised; output.npy is what PyTorch computes for the refilled model.

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "onnx_import_fixture.h"
#include "onnx_model_builder.h"
#include "resnet/infer/lower_module.h"
#include "resnet/infer/reference_run.h"
#include "resnet/io/npy.h"
#include "resnet/io/onnx.h"
#include "resnet/models/zoo.h"
#include "support/deterministic_weights.h"

namespace resnet::io {
namespace {

using infer::Graph;
using infer::OpKind;
using testing::OnnxBuilder;
using testing::set_int;
using testing::set_ints;
using testing::TempDir;

const double kTolerance = 1e-4;  // the README's "Numerics": fraction of the reference's max |x|

std::string fixture(const std::string& file) {
  return std::string(RESNET_FIXTURE_DIR) + "/onnx/" + file;
}

nlohmann::json case_info(const std::string& name) {
  std::ifstream in(fixture("cases.json"));
  if (!in) throw std::runtime_error("cannot open " + fixture("cases.json"));
  const nlohmann::json all = nlohmann::json::parse(in);
  for (const auto& c : all.at("cases"))
    if (c.at("name") == name) return c;
  throw std::runtime_error("no case " + name + " in cases.json");
}

onnx::ModelProto load_model(const std::string& path) {
  onnx::ModelProto m;
  const std::string bytes = testing::read_bytes(path);
  if (!m.ParseFromString(bytes)) throw std::runtime_error("cannot parse " + path);
  return m;
}

// Fills every FLOAT initializer of `m` by the deterministic ONNX rule.
void refill(onnx::ModelProto& m, uint64_t seed) {
  for (onnx::TensorProto& t : *m.mutable_graph()->mutable_initializer()) {
    if (t.data_type() != onnx::TensorProto_DataType_FLOAT) continue;
    const Shape shape(t.dims().begin(), t.dims().end());
    Tensor values(shape);
    testing::fill_by_rule(values, seed, t.name(), testing::onnx_initializer_rule(t.name(), shape));
    t.clear_float_data();
    t.set_raw_data(values.raw(), values.nbytes());
  }
}

std::map<OpKind, int> op_counts(const Graph& g) {
  std::map<OpKind, int> counts;
  for (const auto& n : g.nodes) ++counts[n.op];
  return counts;
}

// --- torchvision exports against PyTorch ---

class OnnxTorchvision : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    info_ = case_info(GetParam());
    model_ = load_model(fixture(GetParam() + ".onnx"));
    refill(model_, info_.at("seed").get<uint64_t>());
    graph_ = read_onnx(testing::OnnxBuilder::save_model(model_, dir_.file("model.onnx")));
  }

  // run_reference on the import against PyTorch's output.
  void check_output();
  // Op counts, parameter names and shapes against the architecture and the file.
  void check_structure();

  int onnx_count(const std::string& op) const { return info_.at("onnx_ops").value(op, 0); }

  TempDir dir_;
  nlohmann::json info_;
  onnx::ModelProto model_;
  Graph graph_;
};

TEST_P(OnnxTorchvision, MatchesPyTorchWithTheExpectedStructure) {
  check_output();
  check_structure();
}

void OnnxTorchvision::check_output() {
  const Shape input = info_.at("input_shape").get<Shape>();
  const Tensor x = testing::deterministic_tensor(info_.at("seed").get<uint64_t>(), "input", input);
  const Tensor expected = read_npy(fixture(GetParam() + ".output.npy"));
  const Tensor got = infer::run_reference(graph_, x);
  ASSERT_EQ(got.shape(), expected.shape());
  EXPECT_LE(max_abs_diff(got, expected), kTolerance * max_abs(expected));
}

void OnnxTorchvision::check_structure() {
  // Known architecture facts, independent of the file: convolutions, ReLUs, residual adds.
  const std::map<std::string, std::array<int, 3>> arch = {
      {"resnet18", {20, 17, 8}}, {"resnet50", {53, 49, 16}}, {"resnext50_32x4d", {53, 49, 16}}};
  const auto [convs, relus, adds] = arch.at(info_.at("model").get<std::string>());
  const bool preserve = info_.at("shape") == "preserve";
  auto counts = op_counts(graph_);
  EXPECT_EQ(counts[OpKind::conv], convs);
  EXPECT_EQ(counts[OpKind::batch_norm], preserve ? convs : 0);
  EXPECT_EQ(counts[OpKind::relu], relus);
  EXPECT_EQ(counts[OpKind::add], adds);
  EXPECT_EQ(counts[OpKind::max_pool], 1);
  EXPECT_EQ(counts[OpKind::global_avg_pool], 1);
  EXPECT_EQ(counts[OpKind::flatten], 1);
  EXPECT_EQ(counts[OpKind::linear], 1);
  // Identity nodes (torch's shared initializers) leave no trace; nothing else is dropped.
  EXPECT_EQ(static_cast<int>(graph_.nodes.size()),
            model_.graph().node_size() - onnx_count("Identity") - onnx_count("Constant"));
  EXPECT_EQ(graph_.values[graph_.output].name, "output");

  // A training-preserving export keeps the state_dict names (less num_batches_tracked),
  // shapes included; the Identity-shared ones too, under their own names.
  auto model = models::build(info_.at("model").get<std::string>());
  std::map<std::string, Shape> state, params;
  for (auto& [name, t] : model->state_dict())
    if (name.find("num_batches_tracked") == std::string::npos) state[name] = t->shape();
  for (const infer::Param* p : graph_.all_params()) params[p->name] = p->value.shape();
  if (preserve) {
    EXPECT_EQ(params, state);
  } else {
    EXPECT_EQ(params.at("fc.weight"), state.at("fc.weight"));
    EXPECT_EQ(params.at("fc.bias"), state.at("fc.bias"));
    EXPECT_EQ(graph_.all_params().size(), 2u * convs + 2u);  // folded weight and bias each
  }
}

INSTANTIATE_TEST_SUITE_P(Onnx, OnnxTorchvision,
                         ::testing::Values("resnet18_eval_op13", "resnet18_preserve_op13",
                                           "resnet50_eval_op13", "resnet50_preserve_op13",
                                           "resnext50_32x4d_eval_op13",
                                           "resnext50_32x4d_preserve_op13", "resnet18_eval_op11",
                                           "resnet18_preserve_op11", "resnet18_eval_op17",
                                           "resnet18_preserve_op17"));

// --- whole zoo networks through the ONNX form of our own export ---

struct RoundTripCase {
  std::string model;
  char shortcut;
  Shape input;
};

class OnnxRoundTrip : public ::testing::TestWithParam<RoundTripCase> {};

TEST_P(OnnxRoundTrip, ImportComputesWhatTheModuleTreeDoes) {
  const RoundTripCase& c = GetParam();
  models::ModelOptions options;
  options.cifar_shortcut = c.shortcut;
  options.in_channels = c.input[1];
  auto model = models::build(c.model, options);
  testing::fill_deterministic(*model, 11);
  model->eval();
  const Graph lowered = infer::lower_module(*model);
  Shape dims = c.input;
  dims[0] = -1;  // a symbolic batch, as exporters write it
  TempDir dir;
  const std::string path = dir.file("model.onnx");
  testing::write_bytes(path, testing::graph_to_onnx(lowered, dims).SerializeAsString());
  const Graph imported = read_onnx(path);

  EXPECT_EQ(op_counts(imported), op_counts(lowered));
  std::vector<std::string> lowered_names, imported_names;
  for (const auto* p : lowered.all_params()) lowered_names.push_back(p->name);
  for (const auto* p : imported.all_params()) imported_names.push_back(p->name);
  EXPECT_EQ(imported_names, lowered_names);

  const Tensor x = testing::deterministic_tensor(11, "input", c.input);
  const Tensor expected = model->forward(x);
  const Tensor got = infer::run_reference(imported, x);
  ASSERT_EQ(got.shape(), expected.shape());
  EXPECT_LE(max_abs_diff(got, expected), kTolerance * max_abs(expected));
}

INSTANTIATE_TEST_SUITE_P(Onnx, OnnxRoundTrip,
                         ::testing::Values(RoundTripCase{"resnet20", 'A', {2, 3, 32, 32}},
                                           RoundTripCase{"resnet20", 'B', {2, 3, 32, 32}},
                                           RoundTripCase{"plain20", 'A', {1, 1, 28, 28}},
                                           RoundTripCase{"block:5,8,2", 'A', {2, 5, 9, 7}}),
                         [](const auto& info) {
                           std::string name = info.param.model + "_" + info.param.shortcut;
                           for (char& ch : name)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return name;
                         });

// --- single features ---

using testing::OnnxFeatures;

TEST_F(OnnxFeatures, PadOnHeightAndWidthFoldsIntoConv) {
  OnnxBuilder padded(13, {1, 2, 6, 5});
  padded.initializer("w", weights("w", {3, 2, 3, 3}));
  padded.ints("pads", {0, 0, 1, 2, 0, 0, 3, 0});
  padded.node("Pad", {"input", "pads"}, {"p"});
  padded.node("Conv", {"p", "w"}, {"output"}, "conv");
  OnnxBuilder direct(13, {1, 2, 6, 5});
  direct.initializer("w", weights("w", {3, 2, 3, 3}));
  set_ints(direct.node("Conv", {"input", "w"}, {"output"}, "conv"), "pads", {1, 2, 3, 0});
  const Graph g = import(padded);
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].window.pad_t, 1);
  EXPECT_EQ(g.nodes[0].window.pad_l, 2);
  EXPECT_EQ(g.nodes[0].window.pad_b, 3);
  EXPECT_EQ(g.nodes[0].window.pad_r, 0);
  expect_same(padded, direct, {2, 2, 6, 5});
}

TEST_F(OnnxFeatures, PadFoldsIntoAveragePoolCountingPadding) {
  OnnxBuilder padded(13, {1, 2, 5, 5});
  padded.ints("pads", {0, 0, 1, 1, 0, 0, 1, 1});
  padded.node("Pad", {"input", "pads"}, {"p"});
  auto& pool = padded.node("AveragePool", {"p"}, {"output"});
  set_ints(pool, "kernel_shape", {3, 3});
  set_ints(pool, "strides", {2, 2});
  set_int(pool, "count_include_pad", 1);
  OnnxBuilder direct(13, {1, 2, 5, 5});
  auto& pool2 = direct.node("AveragePool", {"input"}, {"output"});
  set_ints(pool2, "kernel_shape", {3, 3});
  set_ints(pool2, "strides", {2, 2});
  set_ints(pool2, "pads", {1, 1, 1, 1});
  set_int(pool2, "count_include_pad", 1);
  expect_same(padded, direct, {1, 2, 5, 5});
}

TEST_F(OnnxFeatures, PadOnChannelsBecomesPadChannels) {
  OnnxBuilder b(11, {1, 2, 3, 3});
  b.ints("pads", {0, 1, 0, 0, 0, 3, 0, 0});
  b.node("Pad", {"input", "pads"}, {"output"});
  const Graph g = import(b);
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].op, OpKind::pad_channels);
  EXPECT_EQ(g.nodes[0].pads, (std::vector<int64_t>{1, 3}));
}

TEST_F(OnnxFeatures, SlicesPerAxisMergeIntoOneSubsample) {
  // x[:, :, ::2, ::2] as torch writes it: one Slice per axis, bounds from Constant nodes.
  OnnxBuilder b(13, {1, 2, 7, 6});
  const int64_t end = std::numeric_limits<int64_t>::max();
  for (const auto& [name, v] : std::vector<std::pair<std::string, int64_t>>{
           {"zero", 0}, {"end", end}, {"two", 2}, {"three", 3}, {"step", 2}}) {
    auto& c = b.node("Constant", {}, {name});
    auto* a = c.add_attribute();
    a->set_name("value_ints");
    a->set_type(onnx::AttributeProto_AttributeType_INTS);
    a->add_ints(v);
  }
  b.node("Slice", {"input", "zero", "end", "two", "step"}, {"s1"});
  b.node("Slice", {"s1", "zero", "end", "three", "step"}, {"output"});
  const Graph g = import(b);
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].op, OpKind::subsample);
  EXPECT_EQ(g.nodes[0].window.stride_h, 2);
  EXPECT_EQ(g.nodes[0].window.stride_w, 2);
  const Tensor y = infer::run_reference(g, testing::deterministic_tensor(1, "x", {1, 2, 7, 6}));
  EXPECT_EQ(y.shape(), (Shape{1, 2, 4, 3}));
}

TEST_F(OnnxFeatures, MatMulPlusBiasIsGemm) {
  const Tensor w = weights("w", {4, 6}), bias = weights("b", {4});
  Tensor wt({6, 4});
  for (int64_t o = 0; o < 4; ++o)
    for (int64_t i = 0; i < 6; ++i) wt.f32()[i * 4 + o] = w.f32()[o * 6 + i];
  OnnxBuilder mm(13, {1, 6, 1, 1});
  mm.initializer("fc.weight_t", wt);
  mm.initializer("fc.bias", bias);
  mm.node("Flatten", {"input"}, {"f"});
  mm.node("MatMul", {"f", "fc.weight_t"}, {"m"});
  mm.node("Add", {"fc.bias", "m"}, {"output"});
  OnnxBuilder gemm(13, {1, 6, 1, 1});
  gemm.initializer("fc.weight", w);
  gemm.initializer("fc.bias", bias);
  gemm.node("Flatten", {"input"}, {"f"});
  set_int(gemm.node("Gemm", {"f", "fc.weight", "fc.bias"}, {"output"}), "transB", 1);
  const Graph g = import(mm);
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(g.nodes[1].op, OpKind::linear);
  ASSERT_EQ(g.nodes[1].params.size(), 2u);
  EXPECT_EQ(g.nodes[1].params[0].name, "fc.weight_t");
  EXPECT_EQ(g.nodes[1].params[1].name, "fc.bias");
  expect_same(mm, gemm, {3, 6, 1, 1});
}

TEST_F(OnnxFeatures, GemmAlphaBetaAndUntransposedWeight) {
  const Tensor w = weights("w", {4, 6}), bias = weights("b", {4});
  Tensor wt({6, 4}), w2({4, 6}), b2({4});
  for (int64_t o = 0; o < 4; ++o) {
    b2.f32()[o] = 0.5f * bias.f32()[o];
    for (int64_t i = 0; i < 6; ++i) {
      wt.f32()[i * 4 + o] = w.f32()[o * 6 + i];
      w2.f32()[o * 6 + i] = 2.0f * w.f32()[o * 6 + i];
    }
  }
  OnnxBuilder scaled(13, {1, 6, 1, 1});
  scaled.initializer("w", wt);
  scaled.initializer("b", bias.reshape({1, 4}));
  scaled.node("Flatten", {"input"}, {"f"});
  auto& g = scaled.node("Gemm", {"f", "w", "b"}, {"output"});
  testing::set_float(g, "alpha", 2.0f);
  testing::set_float(g, "beta", 0.5f);
  OnnxBuilder plain(13, {1, 6, 1, 1});
  plain.initializer("w", w2);
  plain.initializer("b", b2);
  plain.node("Flatten", {"input"}, {"f"});
  set_int(plain.node("Gemm", {"f", "w", "b"}, {"output"}), "transB", 1);
  expect_same(scaled, plain, {2, 6, 1, 1});
}

TEST_F(OnnxFeatures, ReshapeToBatchByFeaturesIsFlatten) {
  for (const std::vector<int64_t>& shape :
       {std::vector<int64_t>{0, -1}, {1, -1}, {1, 8}, {-1, 8}}) {
    OnnxBuilder b(14, {1, 8, 3, 3});
    b.ints("shape", shape);
    b.node("GlobalAveragePool", {"input"}, {"p"});
    b.node("Reshape", {"p", "shape"}, {"output"});
    const Graph g = import(b);
    ASSERT_EQ(g.nodes.size(), 2u);
    EXPECT_EQ(g.nodes[1].op, OpKind::flatten);
  }
  // The shape from a Constant node holding a TensorProto, as torch writes it.
  OnnxBuilder b(13, {2, 8, 3, 3});
  auto& c = b.node("Constant", {}, {"shape"});
  auto* value = c.add_attribute();
  value->set_name("value");
  value->set_type(onnx::AttributeProto_AttributeType_TENSOR);
  value->mutable_t()->set_data_type(onnx::TensorProto_DataType_INT64);
  value->mutable_t()->add_dims(2);
  value->mutable_t()->add_int64_data(2);
  value->mutable_t()->add_int64_data(-1);
  b.node("GlobalAveragePool", {"input"}, {"p"});
  b.node("Reshape", {"p", "shape"}, {"output"});
  const Graph g = import(b);
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(g.nodes[1].op, OpKind::flatten);
}

TEST_F(OnnxFeatures, AutoPadSameUpperAndLower) {
  // 6x6, kernel 3, stride 2: output 3, one row and column of padding in total.
  for (const auto& [mode, pads] : std::vector<std::pair<std::string, std::vector<int64_t>>>{
           {"SAME_UPPER", {0, 0, 1, 1}}, {"SAME_LOWER", {1, 1, 0, 0}}, {"VALID", {0, 0, 0, 0}}}) {
    OnnxBuilder same(13, {1, 2, 6, 6});
    same.initializer("w", weights("w", {2, 2, 3, 3}));
    auto& c = same.node("Conv", {"input", "w"}, {"output"});
    set_ints(c, "strides", {2, 2});
    testing::set_string(c, "auto_pad", mode);
    OnnxBuilder explicit_pads(13, {1, 2, 6, 6});
    explicit_pads.initializer("w", weights("w", {2, 2, 3, 3}));
    auto& c2 = explicit_pads.node("Conv", {"input", "w"}, {"output"});
    set_ints(c2, "strides", {2, 2});
    set_ints(c2, "pads", pads);
    SCOPED_TRACE(mode);
    expect_same(same, explicit_pads, {1, 2, 6, 6});
  }
}

TEST_F(OnnxFeatures, InitializersAmongInputsAndFloatData) {
  // Older exporters list initializers among the graph inputs, and store float_data.
  OnnxBuilder b(11, {1, 2, 4, 4});
  auto& w = b.initializer("w", weights("w", {3, 2, 1, 1}));
  const Tensor values = weights("w", {3, 2, 1, 1});
  w.clear_raw_data();
  for (float v : values.values()) w.add_float_data(v);
  OnnxBuilder::set_type(*b.graph().add_input(), {3, 2, 1, 1});
  b.graph().mutable_input(1)->set_name("w");
  b.node("Conv", {"input", "w"}, {"output"});
  const Graph g = import(b);
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].params[0].name, "w");
  EXPECT_EQ(max_abs_diff(g.nodes[0].params[0].value, values), 0.0f);
}

TEST_F(OnnxFeatures, SymbolicSpatialDimsImportWithoutShapes) {
  OnnxBuilder b(13, {-1, 3, -1, -1});
  b.initializer("w", weights("w", {4, 3, 3, 3}));
  set_ints(b.node("Conv", {"input", "w"}, {"c"}), "pads", {1, 1, 1, 1});
  b.node("Relu", {"c"}, {"output"});
  const Graph g = import(b);
  EXPECT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(infer::run_reference(g, testing::deterministic_tensor(1, "x", {2, 3, 5, 7})).shape(),
            (Shape{2, 4, 5, 7}));
}

TEST_F(OnnxFeatures, IdentityOfActivationIsAnAlias) {
  OnnxBuilder b(13, {1, 2, 3, 3});
  b.node("Identity", {"input"}, {"i"});
  b.node("Relu", {"i"}, {"r"});
  b.node("Identity", {"r"}, {"output"});
  const Graph g = import(b);
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].inputs, std::vector<int>{0});
  EXPECT_EQ(g.output, g.nodes[0].output);
}

}  // namespace
}  // namespace resnet::io
