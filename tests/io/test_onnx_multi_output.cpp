// ONNX graphs of several outputs: MaxPool's Indices, Dropout's mask and training
// BatchNormalization's running statistics import as graph outputs of their types, come
// back from export as they went, and `resnet run` writes one .npy per output
// (--output a.npy,b.npy); what is not supported, or a wrong count of paths, is refused in
// one line naming the file.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "cli/cli_runner.h"
#include "onnx_import_fixture.h"
#include "onnx_model_builder.h"
#include "onnx_test_util.h"
#include "resnet/infer/compiled_model.h"
#include "resnet/infer/op_table.h"
#include "resnet/io/npy.h"

namespace resnet::io {
namespace {

using infer::ElementType;
using infer::OpKind;
using testing::OnnxBuilder;
using testing::set_float;
using testing::set_int;
using testing::set_ints;

class OnnxMultiOutput : public testing::OnnxFeatures {
 protected:
  // [1, 2, 5, 4] -> MaxPool 2x2 (stride 2, pads 0 0 1 0) -> "output", "indices".
  OnnxBuilder max_pool_with_indices(int64_t storage_order) {
    OnnxBuilder b(12, {1, 2, 5, 4});
    b.graph().add_output()->set_name("indices");
    auto& pool = b.node("MaxPool", {"input"}, {"output", "indices"}, "pool");
    set_ints(pool, "kernel_shape", {2, 2});
    set_ints(pool, "strides", {2, 2});
    set_ints(pool, "pads", {0, 0, 1, 0});
    set_int(pool, "storage_order", storage_order);
    return b;
  }
};

TEST_F(OnnxMultiOutput, MaxPoolIndicesImportAsAnInt64Output) {
  infer::Graph g = import(max_pool_with_indices(0));
  ASSERT_EQ(g.extra_outputs.size(), 1u);
  EXPECT_EQ(g.values[g.extra_outputs[0]].name, "indices");
  const Tensor x = testing::deterministic_tensor(1, "x", {1, 2, 5, 4});
  const std::vector<Tensor> y = infer::run_reference_outputs(g, x);
  ASSERT_EQ(y.size(), 2u);
  EXPECT_EQ(y[0].shape(), (Shape{1, 2, 3, 2}));
  ASSERT_EQ(y[1].dtype(), DType::i64);
  // Every index points at its output's value, inside its own plane.
  for (int64_t i = 0; i < y[1].numel(); ++i) {
    EXPECT_EQ(x.f32()[y[1].i64()[i]], y[0].f32()[i]) << i;
    EXPECT_EQ(y[1].i64()[i] / 20, i / 6) << i;
  }
  const std::vector<Tensor> compiled = infer::CompiledModel(g).run_outputs(x);
  ASSERT_EQ(compiled.size(), 2u);
  EXPECT_EQ(std::memcmp(compiled[1].raw(), y[1].raw(), y[1].nbytes()), 0);
}

TEST_F(OnnxMultiOutput, UnsupportedStorageOrderIsRefused) {
  EXPECT_IO_ERROR(import(max_pool_with_indices(2)), "node 'pool' (MaxPool, opset 12)",
                  "expected storage_order 0 (row major) or 1 (column major), found 2");
}

TEST_F(OnnxMultiOutput, DropoutMaskAndTrainingBatchNorm) {
  OnnxBuilder b(15, {2, 3, 2, 2});
  for (const char* p : {"s", "b", "m", "v"}) b.initializer(p, Tensor::full({3}, 0.5f));
  auto& bn = b.node("BatchNormalization", {"input", "s", "b", "m", "v"}, {"y", "rm", "rv"}, "bn");
  set_int(bn, "training_mode", 1);
  set_float(bn, "momentum", 0.5f);
  b.node("Dropout", {"y"}, {"output", "mask"}, "drop");
  for (const char* o : {"mask", "rv"}) b.graph().add_output()->set_name(o);
  const infer::Graph g = import(b);
  ASSERT_EQ(g.extra_outputs.size(), 2u);
  const Tensor x = testing::deterministic_tensor(2, "x", {2, 3, 2, 2});
  const std::vector<Tensor> y = infer::CompiledModel(g).run_outputs(x);
  ASSERT_EQ(y.size(), 3u);
  EXPECT_EQ(y[1].dtype(), DType::u8);
  EXPECT_EQ(y[1].shape(), x.shape());
  // running_var = 0.5 * 0.5 + 0.5 * the batch's biased variance of channel c.
  ASSERT_EQ(y[2].shape(), (Shape{3}));
  for (int64_t c = 0; c < 3; ++c) {
    double sum = 0, sq = 0;
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t i = 0; i < 4; ++i) sum += x.f32()[(n * 3 + c) * 4 + i];
    const double mean = sum / 8;
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t i = 0; i < 4; ++i) {
        const double d = x.f32()[(n * 3 + c) * 4 + i] - mean;
        sq += d * d;
      }
    EXPECT_NEAR(y[2].f32()[c], 0.25 + 0.5 * sq / 8, 1e-6) << c;
  }
}

TEST_F(OnnxMultiOutput, TrainingBatchNormIsNotExported) {
  // Opset 13, what export writes, has no training_mode.
  OnnxBuilder b(15, {1, 3, 4, 4});
  b.initializer("w", weights("w", {3, 3, 1, 1}));
  b.node("Conv", {"input", "w"}, {"c"}, "conv");
  for (const char* p : {"s", "b", "m", "v"}) b.initializer(p, Tensor::full({3}, 0.5f));
  set_int(b.node("BatchNormalization", {"c", "s", "b", "m", "v"}, {"output"}, "bn"),
          "training_mode", 1);
  EXPECT_IO_ERROR(write_onnx(import(b), dir_.file("out.onnx")), "node 'bn'", "training_mode 1");
}

TEST_F(OnnxMultiOutput, ExportKeepsEveryOutputAndItsType) {
  OnnxBuilder b(13, {1, 3, 6, 6});
  b.initializer("w", weights("w", {4, 3, 3, 3}));
  b.node("Conv", {"input", "w"}, {"c"}, "conv");
  b.graph().add_output()->set_name("indices");
  b.graph().add_output()->set_name("mask");
  auto& pool = b.node("MaxPool", {"c"}, {"output", "indices"}, "pool");
  set_ints(pool, "kernel_shape", {2, 2});
  set_ints(pool, "dilations", {2, 1});
  set_int(pool, "storage_order", 1);
  b.node("Dropout", {"c"}, {"d", "mask"}, "drop");
  const infer::Graph g = import(b);
  const std::string path = dir_.file("exported.onnx");
  write_onnx(g, path);
  const onnx::ModelProto proto = testing::read_onnx_proto(path);
  ASSERT_EQ(proto.graph().output_size(), 3);
  EXPECT_EQ(proto.graph().output(1).type().tensor_type().elem_type(),
            onnx::TensorProto_DataType_INT64);
  EXPECT_EQ(proto.graph().output(2).type().tensor_type().elem_type(),
            onnx::TensorProto_DataType_BOOL);
  const infer::Graph back = read_onnx(path);
  const Tensor x = testing::deterministic_tensor(3, "x", {2, 3, 6, 6});
  const std::vector<Tensor> want = infer::run_reference_outputs(g, x);
  const std::vector<Tensor> got = infer::run_reference_outputs(back, x);
  ASSERT_EQ(got.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_EQ(got[i].shape(), want[i].shape()) << i;
    ASSERT_EQ(got[i].dtype(), want[i].dtype()) << i;
    EXPECT_EQ(std::memcmp(got[i].raw(), want[i].raw(), want[i].nbytes()), 0) << i;
  }
}

TEST_F(OnnxMultiOutput, RunWritesOneNpyPerOutput) {
  const std::string model = max_pool_with_indices(1).save(dir_.file("pool.onnx"));
  const Tensor x = testing::deterministic_tensor(4, "x", {1, 2, 5, 4});
  write_npy(dir_.file("x.npy"), x);
  const std::string run = "run --model " + model + " --input " + dir_.file("x.npy");
  const testing::CliResult ok =
      testing::run_cli(run + " --output " + dir_.file("y.npy") + "," + dir_.file("i.npy"));
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(testing::read_bytes(dir_.file("i.npy")).find("'<i8'"), std::string::npos);
  const Tensor indices = read_npy(dir_.file("i.npy"), NpyIntegers::to_i64);
  const std::vector<Tensor> want =
      infer::run_reference_outputs(import(max_pool_with_indices(1)), x);
  ASSERT_EQ(indices.shape(), want[1].shape());
  EXPECT_EQ(std::memcmp(indices.raw(), want[1].raw(), want[1].nbytes()), 0);
  // One path for two outputs, or three: refused in one line naming both.
  for (const std::string& paths :
       {dir_.file("y.npy"), std::string("a.npy,b.npy,c.npy"), std::string("a.npy,")}) {
    const testing::CliResult bad = testing::run_cli(run + " --output " + paths);
    EXPECT_NE(bad.exit_code, 0);
    EXPECT_NE(bad.err.find("--output: expected 2 comma-separated .npy paths for " + model +
                           "'s outputs 'output', 'indices'"),
              std::string::npos)
        << bad.err;
    EXPECT_EQ(std::count(bad.err.begin(), bad.err.end(), '\n'), 1) << bad.err;
  }
}

TEST_F(OnnxMultiOutput, DropoutMaskIsWrittenAsBool) {
  OnnxBuilder b(13, {3, 4});
  b.graph().add_output()->set_name("mask");
  b.node("Dropout", {"input"}, {"output", "mask"}, "drop");
  const std::string model = b.save(dir_.file("drop.onnx"));
  write_npy(dir_.file("x.npy"), testing::deterministic_tensor(4, "x", {3, 4}));
  const testing::CliResult r =
      testing::run_cli("run --model " + model + " --input " + dir_.file("x.npy") + " --output " +
                       dir_.file("y.npy") + "," + dir_.file("mask.npy"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(testing::read_bytes(dir_.file("mask.npy")).find("'|b1'"), std::string::npos);
  const Tensor mask = read_npy(dir_.file("mask.npy"), NpyIntegers::to_i64);
  ASSERT_EQ(mask.shape(), (Shape{3, 4}));
  EXPECT_TRUE(std::all_of(mask.i64(), mask.i64() + 12, [](int64_t m) { return m == 1; }));
}

}  // namespace
}  // namespace resnet::io
