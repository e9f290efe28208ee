// QDQ export of a quantized model (resnet export of a `resnet quantize` checkpoint): BN
// folded, INT8 weights and INT32 biases through DequantizeLinear, a QuantizeLinear /
// DequantizeLinear pair on every calibrated value, the ReLUs dropped into their grids.
// Read back, the file is the same int8 model: it runs on the same grids and computes what
// the quantized model computes, on inputs the calibration did not see.

#include <gtest/gtest.h>

#include <onnx/onnx_pb.h>

#include <fstream>
#include <map>
#include <sstream>

#include "io_test_util.h"
#include "resnet/api/model.h"
#include "resnet/infer/calibration.h"
#include "resnet/infer/compiled_model.h"
#include "resnet/infer/quantized_export.h"
#include "resnet/io/onnx.h"
#include "support/deterministic_weights.h"

namespace resnet::io {
namespace {

using infer::OpKind;

std::map<std::string, int> op_types(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  onnx::ModelProto m;
  EXPECT_TRUE(m.ParseFromString(bytes.str()));
  std::map<std::string, int> counts;
  for (const onnx::NodeProto& n : m.graph().node()) ++counts[n.op_type()];
  return counts;
}

Tensor int8_run(const infer::Graph& g, std::shared_ptr<const infer::Calibration> c,
                const Tensor& x) {
  infer::CompileOptions options;
  options.precision = infer::Precision::int8;
  options.calibration = std::move(c);
  return infer::CompiledModel(g, options).run(x);
}

class OnnxQdqExport : public ::testing::Test {
 protected:
  // resnet20 (CIFAR option A: Slice and Pad stay float) calibrated on two batches.
  void SetUp() override {
    model_ = Model::load("resnet20");
    testing::fill_deterministic(*model_.module(), 3);  // not the global generator's state
    model_.calibrate({testing::deterministic_tensor(1, "calibration", {8, 3, 32, 32}),
                      testing::deterministic_tensor(2, "calibration", {8, 3, 32, 32})});
    path_ = dir_.file("q.onnx");
    write_onnx(infer::quantized_export_graph(model_.graph(), *model_.calibration()), path_);
  }
  Model model_;
  testing::TempDir dir_;
  std::string path_;
};

TEST_F(OnnxQdqExport, WritesTheQdqFormOnnxRuntimeFuses) {
  const std::map<std::string, int> ops = op_types(path_);
  EXPECT_EQ(ops.at("Conv"), 19);
  EXPECT_EQ(ops.count("BatchNormalization"), 0u);  // folded, as int8 runs it
  EXPECT_EQ(ops.count("Relu"), 0u);                // each in its grid's clamp at 0
  // Every convolution's weight and bias dequantized, and a pair per quantized value.
  EXPECT_EQ(ops.at("DequantizeLinear"), 2 * 19 + ops.at("QuantizeLinear"));
  EXPECT_GE(ops.at("QuantizeLinear"), 19 + 9);  // each conv's result, each add's
}

TEST_F(OnnxQdqExport, ReadBackItIsTheSameInt8Model) {
  const infer::Graph file = read_onnx(path_);
  int relus = 0, steps = 0;
  for (const infer::Node& n : file.nodes) {
    relus += n.op == OpKind::relu;
    steps += n.op == OpKind::conv && !n.weight_steps.empty();
  }
  EXPECT_EQ(relus, 19) << "the stem's, one per block's first conv, one per add";
  EXPECT_EQ(steps, 19);
  const Tensor x = testing::deterministic_tensor(9, "unseen", {4, 3, 32, 32});
  const Tensor ours = int8_run(model_.graph(), model_.calibration(), x);
  const Tensor reread = int8_run(
      file, std::make_shared<infer::Calibration>(*infer::Calibration::from_graph(file)), x);
  ASSERT_EQ(ours.shape(), reread.shape());
  // The same grids; the file's clamps before each fused add, its INT32 biases and its
  // rounded weights (ours are rounded by the same rule) make the only differences.
  EXPECT_LE(max_abs_diff(ours, reread), 0.01f * max_abs(ours));  // measured 0.0022
  // And the float graph of the file is the quantized model's weights, BN folded.
  const Tensor f32 = infer::CompiledModel(model_.graph()).run(x);
  EXPECT_LE(max_abs_diff(infer::CompiledModel(file).run(x), f32), 0.05f * max_abs(f32));
}

TEST_F(OnnxQdqExport, AnImportedQuantizedFileIsWrittenBackQuantized) {
  const infer::Graph file = read_onnx(path_);
  const std::string again = dir_.file("again.onnx");
  write_onnx(file, again);
  EXPECT_EQ(op_types(again), op_types(path_));
  const infer::Graph reread = read_onnx(again);
  const Tensor x = testing::deterministic_tensor(9, "unseen", {2, 3, 32, 32});
  auto own = [](const infer::Graph& g) {
    return std::make_shared<infer::Calibration>(*infer::Calibration::from_graph(g));
  };
  EXPECT_EQ(max_abs_diff(int8_run(file, own(file), x), int8_run(reread, own(reread), x)), 0.f);
}

}  // namespace
}  // namespace resnet::io
