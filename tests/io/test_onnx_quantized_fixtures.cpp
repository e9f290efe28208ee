// Whole quantized ResNet-18s as ONNX Runtime's quantizer (QDQ) and the Model Zoo's int8
// files (QLinear operators) lay them out: tests/fixtures/onnx_quantized, written by
// tools/gen_qdq_model.py with the INT8 weights' data stripped. Both files are the same
// model; refilled with the same weights they must import to the same network, compute
// the same float result, and run int8 on their own grids.

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "io_test_util.h"
#include "onnx_model_builder.h"
#include "resnet/infer/calibration.h"
#include "resnet/infer/compiled_model.h"
#include "resnet/infer/reference_run.h"
#include "resnet/io/onnx.h"
#include "support/deterministic_weights.h"

namespace resnet::io {
namespace {

using infer::OpKind;

// The INT8 weight of output channel `o`, element `i` within it, of the tensor `name`: in
// [-31, 31], about the spread of the file's own weights on their steps, so that the
// activations stay inside the file's calibrated ranges.
int32_t weight_rule(const std::string& name, int64_t o, int64_t i) {
  const int64_t h = static_cast<int64_t>(std::hash<std::string>{}(name) % 97);
  return static_cast<int32_t>((o * 31 + i * 17 + h) % 63) - 31;
}

// Reads `file` and fills every stripped "*_weight_quantized" initializer by weight_rule.
// QLinearMatMul's B is [IN, OUT]: its element (i, o) is channel o's element i.
std::string refilled(const std::string& file, const std::string& out) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  onnx::ModelProto m;
  EXPECT_TRUE(m.ParseFromString(bytes.str())) << file;
  bool matmul_b = false;
  for (const onnx::NodeProto& n : m.graph().node()) matmul_b |= n.op_type() == "QLinearMatMul";
  for (onnx::TensorProto& t : *m.mutable_graph()->mutable_initializer()) {
    const std::string suffix = "_weight_quantized";
    if (t.name().size() < suffix.size() || !t.name().ends_with(suffix)) continue;
    int64_t numel = 1;
    for (int64_t d : t.dims()) numel *= d;
    const bool transposed = matmul_b && t.dims_size() == 2 && t.name() == "fc" + suffix;
    const int64_t channels = transposed ? t.dims(1) : t.dims(0), per = numel / channels;
    for (int64_t k = 0; k < numel; ++k) {
      const int64_t o = transposed ? k % channels : k / per,
                    i = transposed ? k / channels : k % per;
      t.add_int32_data(weight_rule(t.name(), o, i));
    }
  }
  return testing::OnnxBuilder::save_model(m, out);
}

class OnnxQuantizedFixtures : public ::testing::Test {
 protected:
  infer::Graph load(const std::string& form) {
    return read_onnx(refilled(RESNET_FIXTURE_DIR "/onnx_quantized/resnet18_" + form + ".onnx",
                              dir_.file(form + ".onnx")));
  }
  static std::map<OpKind, int> op_counts(const infer::Graph& g) {
    std::map<OpKind, int> counts;
    for (const infer::Node& n : g.nodes) ++counts[n.op];
    return counts;
  }
  static Tensor int8_run(const infer::Graph& g, const Tensor& x) {
    infer::CompileOptions options;
    options.precision = infer::Precision::int8;
    options.calibration = std::make_shared<infer::Calibration>(*infer::Calibration::from_graph(g));
    return infer::CompiledModel(g, options).run(x);
  }
  testing::TempDir dir_;
};

TEST_F(OnnxQuantizedFixtures, QdqAndQLinearFormsAreOneResNet18) {
  const infer::Graph qdq = load("qdq"), qlinear = load("qlinear");
  // 20 convolutions, each ReLU the quantizer dropped restored (stem, 8 first convs of a
  // block, 8 adds), 8 adds, and the head.
  const std::map<OpKind, int> want{
      {OpKind::conv, 20},           {OpKind::relu, 17},   {OpKind::add, 8},   {OpKind::max_pool, 1},
      {OpKind::global_avg_pool, 1}, {OpKind::flatten, 1}, {OpKind::linear, 1}};
  EXPECT_EQ(op_counts(qdq), want);
  EXPECT_EQ(op_counts(qlinear), want);
  for (const infer::Graph* g : {&qdq, &qlinear}) {
    for (const infer::Node& n : g->nodes) {
      if (n.op == OpKind::conv) {
        EXPECT_EQ(static_cast<int64_t>(n.weight_steps.size()), n.params[0].value.dim(0)) << n.name;
      }
    }
  }

  const Tensor x = testing::deterministic_tensor(21, "unseen", {2, 3, 64, 64});
  const Tensor a = infer::run_reference(qdq, x), b = infer::run_reference(qlinear, x);
  EXPECT_LE(max_abs_diff(a, b), 1e-5f * max_abs(a));
  // The compiled f32 model computes what the reference does.
  EXPECT_LE(max_abs_diff(infer::CompiledModel(qdq).run(x), a), 1e-4f * max_abs(a));

  // int8 on each file's grids: close to the float result, and the two forms close to
  // each other (they differ where QLinearMatMul rounds the product before the bias).
  const Tensor ia = int8_run(qdq, x), ib = int8_run(qlinear, x);
  EXPECT_LE(max_abs_diff(ia, a), 0.1f * max_abs(a));    // measured 0.047
  EXPECT_LE(max_abs_diff(ia, ib), 0.06f * max_abs(a));  // measured 0.029
}

}  // namespace
}  // namespace resnet::io
