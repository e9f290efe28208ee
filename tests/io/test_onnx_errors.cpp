// ONNX import of broken files: every problem ends in one resnet::Error line that names the
// file (and the node, its operator and the opset where there is one), says what was
// expected and what was found. The models are built here with the protobuf classes.

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "onnx_model_builder.h"
#include "resnet/infer/reference_run.h"
#include "resnet/io/onnx.h"
#include "support/deterministic_weights.h"

namespace resnet::io {
namespace {

using testing::OnnxBuilder;
using testing::set_int;
using testing::set_ints;
using testing::TempDir;

class OnnxErrors : public ::testing::Test {
 protected:
  // A valid model: conv (w: [4, 3, 3, 3], pads 1) -> relu -> output, input [1, 3, 8, 8].
  static OnnxBuilder valid(int64_t opset = 13) {
    OnnxBuilder b(opset);
    b.initializer("w", testing::deterministic_tensor(1, "w", {4, 3, 3, 3}));
    set_ints(b.node("Conv", {"input", "w"}, {"c"}, "conv"), "pads", {1, 1, 1, 1});
    b.node("Relu", {"c"}, {"output"}, "relu");
    return b;
  }

  std::string save(const OnnxBuilder& b) { return b.save(path_); }
  std::string save_bytes(const std::string& bytes) {
    testing::write_bytes(path_, bytes);
    return path_;
  }

  TempDir dir_;
  const std::string path_ = dir_.file("broken.onnx");
};

TEST_F(OnnxErrors, ValidModelImports) {
  EXPECT_EQ(read_onnx(save(valid())).nodes.size(), 2u);
}

// --- the file ---

TEST_F(OnnxErrors, MissingFile) {
  EXPECT_IO_ERROR(read_onnx(dir_.file("absent.onnx")), "absent.onnx", "no such file");
}

TEST_F(OnnxErrors, EmptyFile) {
  EXPECT_IO_ERROR(read_onnx(save_bytes("")), path_, "empty file");
}

TEST_F(OnnxErrors, Directory) {
  EXPECT_IO_ERROR(read_onnx(dir_.path().string()), dir_.path().string(), "regular file");
}

TEST_F(OnnxErrors, LargerThanProtobufCanHold) {
  // A sparse 3 GiB file: refused by its size, before anything is read.
  testing::write_bytes(path_, "x");
  std::filesystem::resize_file(path_, uint64_t{3} << 30);
  EXPECT_IO_ERROR(read_onnx(path_), path_, "3221225472 bytes", "2 GiB");
}

TEST_F(OnnxErrors, TruncatedProtobuf) {
  const std::string bytes = valid().model.SerializeAsString();
  // Cut inside the weight's raw_data: a length-delimited field runs past the end.
  EXPECT_IO_ERROR(read_onnx(save_bytes(bytes.substr(0, bytes.size() - 100))), path_,
                  "truncated or corrupt");
}

TEST_F(OnnxErrors, EveryTruncationIsAnError) {
  const std::string bytes = valid().model.SerializeAsString();
  for (size_t n = 1; n < bytes.size(); ++n) {
    SCOPED_TRACE(n);
    EXPECT_THROW(read_onnx(save_bytes(bytes.substr(0, n))), Error);
  }
}

TEST_F(OnnxErrors, GarbageBytes) {
  EXPECT_IO_ERROR(read_onnx(save_bytes("\xff\xff\xff\xff this is not a model")), path_,
                  "not a valid ONNX model");
  // Random bytes: some parse as protobufs of unknown fields; none may get further.
  for (int i = 0; i < 200; ++i) {
    std::string bytes(16 + i * 7, '\0');
    for (size_t k = 0; k < bytes.size(); ++k)
      bytes[k] = static_cast<char>(testing::splitmix64_at(i, k) & 0xff);
    SCOPED_TRACE(i);
    EXPECT_THROW(read_onnx(save_bytes(bytes)), Error);
  }
}

TEST_F(OnnxErrors, TextFileIsNotAModel) {
  // Plain text usually parses as a protobuf of unknown fields; there is no graph in it.
  EXPECT_IO_ERROR(read_onnx(save_bytes("hello")), path_, "ONNX model");
}

// --- the model ---

TEST_F(OnnxErrors, Opset0) {
  EXPECT_IO_ERROR(read_onnx(save(valid(0))), path_, "opset 1 to 18", "found 0");
}

TEST_F(OnnxErrors, Opset19) {
  EXPECT_IO_ERROR(read_onnx(save(valid(19))), path_, "opset 1 to 18", "found 19");
}

TEST_F(OnnxErrors, NoDefaultOpset) {
  OnnxBuilder b = valid();
  b.model.mutable_opset_import(0)->set_domain("com.example");
  EXPECT_IO_ERROR(read_onnx(save(b)), path_, "default ONNX opset", "none");
}

TEST_F(OnnxErrors, UnsupportedOp) {
  OnnxBuilder b = valid();
  b.graph().mutable_node(1)->set_output(0, "r");
  b.node("LRN", {"r"}, {"output"}, "probs");
  EXPECT_IO_ERROR(read_onnx(save(b)), path_, "node 'probs' (LRN, opset 13)", "unsupported",
                  "supported: Conv, BatchNormalization, Relu, Add", "Slice");
}

TEST_F(OnnxErrors, OperatorOfAnotherDomain) {
  OnnxBuilder b = valid();
  b.graph().mutable_node(1)->set_domain("com.microsoft");
  EXPECT_IO_ERROR(read_onnx(save(b)), path_, "node 'relu' (Relu, opset 13)", "com.microsoft");
}

// --- values and initializers ---

TEST_F(OnnxErrors, MissingInitializer) {
  OnnxBuilder b = valid();
  b.graph().mutable_initializer()->Clear();
  EXPECT_IO_ERROR(read_onnx(save(b)), path_, "node 'conv' (Conv, opset 13)", "'w'",
                  "no initializer");
}

TEST_F(OnnxErrors, ValueReadBeforeItIsProduced) {
  OnnxBuilder b = valid();
  b.graph().mutable_node()->SwapElements(0, 1);
  EXPECT_IO_ERROR(read_onnx(save(b)), path_, "node 'relu' (Relu, opset 13)",
                  "reads 'c' before it is produced", "'conv'");
}

TEST_F(OnnxErrors, ValueWrittenTwice) {
  OnnxBuilder b = valid();
  b.node("Relu", {"c"}, {"c"}, "again");
  EXPECT_IO_ERROR(read_onnx(save(b)), path_, "node 'again' (Relu, opset 13)", "writes 'c'");
}

TEST_F(OnnxErrors, OutputProducedByNoNode) {
  OnnxBuilder b = valid();
  b.graph().mutable_output(0)->set_name("logits");
  EXPECT_IO_ERROR(read_onnx(save(b)), path_, "'logits'", "produced by no node");
}

TEST_F(OnnxErrors, TwoRealInputs) {
  OnnxBuilder b = valid();
  b.graph().add_input()->set_name("mask");
  EXPECT_IO_ERROR(read_onnx(save(b)), path_, "exactly one graph input", "found 2");
}

TEST_F(OnnxErrors, InputOfAnotherRankThanTheConvolutionTakes) {
  OnnxBuilder b = valid();
  auto* shape = b.graph().mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape();
  shape->add_dim()->set_dim_value(1);
  EXPECT_IO_ERROR(read_onnx(save(b)), path_, "node 'conv' (Conv, opset 13)", "4-D",
                  "[1, 3, 8, 8, 1]");
  for (int i = 0; i < 4; ++i) shape->add_dim()->set_dim_value(1);
  EXPECT_IO_ERROR(read_onnx(save(b)), path_, "input 'input'", "1 to 8 dimensions", "found 9");
}

TEST_F(OnnxErrors, ConstantWhereAnActivationIsExpected) {
  OnnxBuilder b = valid();
  b.graph().mutable_node(1)->set_input(0, "w");
  EXPECT_IO_ERROR(read_onnx(save(b)), path_, "node 'relu' (Relu, opset 13)", "found a constant");
}

// --- tensors ---

TEST_F(OnnxErrors, WrongWeightShape) {
  OnnxBuilder b(13);
  b.initializer("w", testing::deterministic_tensor(1, "w", {4, 5, 3, 3}));
  b.node("Conv", {"input", "w"}, {"output"}, "conv");
  EXPECT_IO_ERROR(read_onnx(save(b)), path_, "node 'conv' (Conv, opset 13)", "weight 'w'",
                  "expects 5 input channels", "[1, 3, 8, 8]");
}

TEST_F(OnnxErrors, WrongBiasShape) {
  OnnxBuilder b = valid();
  b.initializer("b", testing::deterministic_tensor(1, "b", {3}));
  b.graph().mutable_node(0)->add_input("b");
  EXPECT_IO_ERROR(read_onnx(save(b)), path_, "node 'conv' (Conv, opset 13)", "bias 'b'",
                  "expected [4]", "found [3]");
}

TEST_F(OnnxErrors, WeightNot4D) {
  OnnxBuilder b(13);
  b.initializer("w", testing::deterministic_tensor(1, "w", {4, 3, 3}));
  b.node("Conv", {"input", "w"}, {"output"}, "conv");
  EXPECT_IO_ERROR(read_onnx(save(b)), path_, "node 'conv' (Conv, opset 13)", "4-D weight",
                  "[4, 3, 3]");
}

TEST_F(OnnxErrors, ExternalData) {
  OnnxBuilder b = valid();
  onnx::TensorProto& w = *b.graph().mutable_initializer(0);
  w.clear_raw_data();
  w.set_data_location(onnx::TensorProto_DataLocation_EXTERNAL);
  auto* location = w.add_external_data();
  location->set_key("location");
  location->set_value("weights.bin");
  EXPECT_IO_ERROR(read_onnx(save(b)), path_, "tensor 'w' uses external data", "not supported");
}

TEST_F(OnnxErrors, FloatDataCountDoesNotMatchDims) {
  OnnxBuilder b = valid();
  onnx::TensorProto& w = *b.graph().mutable_initializer(0);
  w.clear_raw_data();
  for (int i = 0; i < 5; ++i) w.add_float_data(0.5f);
  EXPECT_IO_ERROR(read_onnx(save(b)), path_, "node 'conv' (Conv, opset 13)", "tensor 'w'",
                  "[4, 3, 3, 3] hold 108 elements", "float_data holds 5");
}

TEST_F(OnnxErrors, LyingDimsAllocateNothing) {
  // 2^60 elements claimed, 16 bytes held: refused before any allocation.
  OnnxBuilder b = valid();
  onnx::TensorProto& w = *b.graph().mutable_initializer(0);
  w.clear_dims();
  w.add_dims(int64_t{1} << 40);
  w.add_dims(int64_t{1} << 20);
  w.set_raw_data(std::string(16, '\0'));
  EXPECT_IO_ERROR(read_onnx(save(b)), path_, "tensor 'w'", "raw_data holds 16 bytes");
  w.add_dims(int64_t{1} << 40);
  EXPECT_IO_ERROR(read_onnx(save(b)), path_, "tensor 'w'", "overflows");
  w.clear_dims();
  w.add_dims(-4);
  EXPECT_IO_ERROR(read_onnx(save(b)), path_, "tensor 'w'", "non-negative dims", "-4");
}

TEST_F(OnnxErrors, WrongDtype) {
  OnnxBuilder b = valid();
  onnx::TensorProto& w = *b.graph().mutable_initializer(0);
  w.set_data_type(onnx::TensorProto_DataType_DOUBLE);
  EXPECT_IO_ERROR(read_onnx(save(b)), path_, "node 'conv' (Conv, opset 13)", "tensor 'w'",
                  "expected a FLOAT tensor", "found DOUBLE");
}

TEST_F(OnnxErrors, StrippedFixtureNeedsItsWeights) {
  // The committed fixtures hold no weights: read as they are, they say so.
  const std::string path = std::string(RESNET_FIXTURE_DIR) + "/onnx/resnet18_eval_op13.onnx";
  EXPECT_IO_ERROR(read_onnx(path), path, "Conv, opset 13", "float_data holds 0");
}

// --- operator attributes ---

TEST_F(OnnxErrors, BatchNormTrainingModeOtherThanZeroOrOne) {
  OnnxBuilder b(14);
  for (const char* p : {"s", "b", "m", "v"}) b.initializer(p, Tensor::full({3}, 1.0f));
  auto& bn = b.node("BatchNormalization", {"input", "s", "b", "m", "v"}, {"output"}, "bn");
  set_int(bn, "training_mode", 2);
  EXPECT_IO_ERROR(read_onnx(save(b)), path_, "node 'bn' (BatchNormalization, opset 14)",
                  "training_mode 0 or 1", "found 2");
}

TEST_F(OnnxErrors, BatchNormWithTrainingOutputs) {
  OnnxBuilder b(11);
  for (const char* p : {"s", "b", "m", "v"}) b.initializer(p, Tensor::full({3}, 1.0f));
  b.node("BatchNormalization", {"input", "s", "b", "m", "v"}, {"y", "mean_out"}, "bn");
  b.node("Add", {"y", "mean_out"}, {"output"});  // reads a training output
  EXPECT_IO_ERROR(read_onnx(save(b)), path_, "node 'bn' (BatchNormalization, opset 11)",
                  "expected one output", "'mean_out', which is read");
}

TEST_F(OnnxErrors, PadBeforeMaxPool) {
  OnnxBuilder b(13);
  b.ints("pads", {0, 0, 1, 1, 0, 0, 1, 1});
  b.node("Pad", {"input", "pads"}, {"p"}, "pad");
  set_ints(b.node("MaxPool", {"p"}, {"output"}, "pool"), "kernel_shape", {3, 3});
  EXPECT_IO_ERROR(read_onnx(save(b)), path_, "node 'pool' (MaxPool, opset 13)", "Pad",
                  "only right before a Conv");
}

TEST_F(OnnxErrors, ReflectPad) {
  OnnxBuilder b(13);
  b.ints("pads", {0, 0, 1, 1, 0, 0, 1, 1});
  testing::set_string(b.node("Pad", {"input", "pads"}, {"output"}, "pad"), "mode", "reflect");
  EXPECT_IO_ERROR(read_onnx(save(b)), path_, "node 'pad' (Pad, opset 13)", "'constant'",
                  "found 'reflect'");
}

TEST_F(OnnxErrors, AddOfAConstant) {
  OnnxBuilder b = valid();
  b.graph().mutable_node(1)->set_output(0, "r");
  b.node("Add", {"r", "w"}, {"output"}, "shift");  // w is [4, 3, 3, 3]
  EXPECT_IO_ERROR(read_onnx(save(b)), path_, "node 'shift' (Add, opset 13)",
                  "cannot broadcast [1, 4, 8, 8] with [4, 3, 3, 3]");
}

TEST_F(OnnxErrors, FlattenAxisOutOfRange) {
  OnnxBuilder b(13);
  set_int(b.node("Flatten", {"input"}, {"output"}, "flat"), "axis", 5);
  EXPECT_IO_ERROR(read_onnx(save(b)), path_, "node 'flat' (Flatten, opset 13)",
                  "flatten axis in [-4, 4], found 5");
}

TEST_F(OnnxErrors, ReshapeToAnotherSize) {
  OnnxBuilder b(13);
  b.ints("shape", {5, -1});
  b.node("Reshape", {"input", "shape"}, {"output"}, "reshape");
  EXPECT_IO_ERROR(read_onnx(save(b)), path_, "node 'reshape' (Reshape, opset 13)",
                  "cannot reshape [1, 3, 8, 8] to [5, -1]");
  b.ints("twice", {-1, -1});
  b.graph().mutable_node(0)->set_input(1, "twice");
  EXPECT_IO_ERROR(read_onnx(save(b)), path_, "at most one -1");
}

TEST_F(OnnxErrors, SliceThatCrops) {
  OnnxBuilder b(13);
  b.ints("starts", {1});
  b.ints("ends", {5});
  b.ints("axes", {2});
  b.node("Slice", {"input", "starts", "ends", "axes"}, {"output"}, "crop");
  EXPECT_IO_ERROR(read_onnx(save(b)), path_, "node 'crop' (Slice, opset 13)", "from 0 to the end",
                  "start 1");
}

TEST_F(OnnxErrors, AttributeOfTheWrongType) {
  OnnxBuilder b = valid();
  testing::set_float(*b.graph().mutable_node(0), "group", 1.0f);
  EXPECT_IO_ERROR(read_onnx(save(b)), path_, "node 'conv' (Conv, opset 13)", "'group'",
                  "expected INT", "found FLOAT");
}

TEST_F(OnnxErrors, DeclaredOutputShapeDisagrees) {
  OnnxBuilder b = valid();
  OnnxBuilder::set_type(*b.graph().mutable_output(0), {1, 5, 8, 8});
  EXPECT_IO_ERROR(read_onnx(save(b)), path_, "'output'", "declared [1, 5, 8, 8]",
                  "computes [1, 4, 8, 8]");
}

TEST_F(OnnxErrors, WindowLargerThanInput) {
  OnnxBuilder b(13);
  set_ints(b.node("MaxPool", {"input"}, {"output"}, "pool"), "kernel_shape", {9, 9});
  EXPECT_IO_ERROR(read_onnx(save(b)), path_, "node 'pool' (MaxPool, opset 13)",
                  "does not fit the input");
}

// Found by the fuzzer (fuzz_onnx): a 2-D MaxPool with auto_pad SAME_UPPER on a 3-D input
// read past the input's shape when computing the padding; a Slice on one did the same.
TEST_F(OnnxErrors, WindowOpsOnAnInputOfTheWrongRank) {
  OnnxBuilder pool(12, {1, 32, 32});
  auto& p = pool.node("MaxPool", {"input"}, {"output"}, "pool");
  set_ints(p, "kernel_shape", {2, 2});
  testing::set_string(p, "auto_pad", "SAME_UPPER");
  EXPECT_IO_ERROR(read_onnx(save(pool)), path_, "node 'pool' (MaxPool, opset 12)",
                  "needs a 4-D input [N, C, H, W]", "found [1, 32, 32]");

  OnnxBuilder slice(12, {1, 4, 6});
  auto one_int = [](int64_t v) {
    Tensor t({1}, DType::i64);
    t.i64()[0] = v;
    return t;
  };
  slice.initializer("starts", one_int(0));
  slice.initializer("ends", one_int(3));
  slice.initializer("axes", one_int(3));
  slice.node("Slice", {"input", "starts", "ends", "axes"}, {"output"}, "slice");
  EXPECT_IO_ERROR(read_onnx(save(slice)), path_, "node 'slice' (Slice, opset 12)",
                  "needs a 4-D input [N, C, H, W]", "found [1, 4, 6]");
}

}  // namespace
}  // namespace resnet::io

namespace resnet::io {
namespace {

// A model using every supported operator: conv -> BN -> relu -> Pad(H, W) -> AveragePool,
// maxpool -> Slice -> Pad(C), add, global pool, flatten, MatMul + Add, Gemm.
testing::OnnxBuilder every_op() {
  OnnxBuilder b(13, {1, 3, 8, 8});
  auto t = [](const std::string& name, Shape shape) {
    return testing::deterministic_tensor(2, name, std::move(shape));
  };
  b.initializer("w", t("w", {4, 3, 3, 3}));
  for (const char* p : {"s", "b", "m"}) b.initializer(p, t(p, {4}));
  b.initializer("v", Tensor::full({4}, 2.0f));
  b.ints("pad_hw", {0, 0, 1, 1, 0, 0, 1, 1});
  b.ints("pad_c", {0, 2, 0, 0, 0, 2, 0, 0});
  b.ints("zero", {0, 0});
  b.ints("end", {1000, 1000});
  b.ints("axes", {2, 3});
  b.ints("steps", {2, 2});
  b.initializer("fc1", t("fc1", {8, 6}));
  b.initializer("fc1_b", t("fc1_b", {6}));
  b.initializer("fc2", t("fc2", {5, 6}));
  b.initializer("fc2_b", t("fc2_b", {5}));
  set_ints(b.node("Conv", {"input", "w"}, {"c"}, "conv"), "pads", {1, 1, 1, 1});
  b.node("BatchNormalization", {"c", "s", "b", "m", "v"}, {"bn"}, "bn");
  b.node("Relu", {"bn"}, {"r"}, "relu");
  b.node("Pad", {"r", "pad_hw"}, {"p"}, "pad");
  auto& avg = b.node("AveragePool", {"p"}, {"a"}, "avg");
  set_ints(avg, "kernel_shape", {3, 3});
  set_int(avg, "count_include_pad", 1);
  auto& max = b.node("MaxPool", {"a"}, {"mp"}, "max");
  set_ints(max, "kernel_shape", {2, 2});
  set_ints(max, "strides", {2, 2});
  b.node("Slice", {"r", "zero", "end", "axes", "steps"}, {"sl"}, "slice");
  b.node("Pad", {"sl", "pad_c"}, {"pc"}, "pad_c");
  b.node("Identity", {"mp"}, {"mp2"}, "identity");
  b.initializer("w2", t("w2", {8, 4, 1, 1}));
  b.node("Conv", {"mp2", "w2"}, {"c2"}, "conv2");
  b.node("Add", {"c2", "pc"}, {"sum"}, "add");
  b.node("GlobalAveragePool", {"sum"}, {"g"}, "gap");
  b.node("Flatten", {"g"}, {"f"}, "flatten");
  b.node("MatMul", {"f", "fc1"}, {"mm"}, "matmul");
  b.node("Add", {"mm", "fc1_b"}, {"h"}, "bias");
  set_int(b.node("Gemm", {"h", "fc2", "fc2_b"}, {"output"}, "gemm"), "transB", 1);
  return b;
}

TEST(OnnxMutations, EveryOpModelImportsAndRuns) {
  TempDir dir;
  const infer::Graph g = read_onnx(every_op().save(dir.file("m.onnx")));
  EXPECT_EQ(g.nodes.size(), 13u);  // the H/W Pad folds into the AveragePool
  const Tensor y = infer::run_reference(g, testing::deterministic_tensor(1, "x", {2, 3, 8, 8}));
  EXPECT_EQ(y.shape(), (Shape{2, 5}));
}

// Flipped bytes anywhere in a model end in resnet::Error or in a model that runs, never
// in a crash or another exception.
TEST(OnnxMutations, CorruptedBytesFailCleanly) {
  TempDir dir;
  const std::string path = dir.file("m.onnx");
  const std::string bytes = every_op().model.SerializeAsString();
  int imported = 0;
  for (uint64_t i = 0; i < 400; ++i) {
    std::string mutated = bytes;
    const uint64_t r = testing::splitmix64_at(99, i);
    for (int k = 0; k < 1 + static_cast<int>(r % 3); ++k) {
      const uint64_t s = testing::splitmix64_at(r, k);
      mutated[s % mutated.size()] = static_cast<char>((s >> 32) & 0xff);
    }
    testing::write_bytes(path, mutated);
    try {
      const infer::Graph g = read_onnx(path);
      ++imported;
      infer::run_reference(g, testing::deterministic_tensor(1, "x", {1, 3, 8, 8}));
    } catch (const Error&) {
      // The expected outcome for most mutations.
    }
  }
  EXPECT_GT(imported, 0);  // some mutations only touch weights
}

// A pool's kernel_shape says its input's rank: 1-D [N, C, L], 2-D [N, C, H, W], 3-D
// [N, C, D, H, W]; another rank is refused, not pooled over the wrong axes.
TEST_F(OnnxErrors, PoolKernelOfAnotherRankThanTheInput) {
  struct Case {
    Shape input;
    std::vector<int64_t> kernel;
    const char* needs;
  };
  for (const Case& c : {Case{{1, 2, 4, 4}, {2, 2, 2}, "needs a 5-D input [N, C, D, H, W]"},
                        Case{{1, 2, 4, 4, 4}, {2, 2}, "needs a 4-D input [N, C, H, W]"},
                        Case{{1, 2, 4, 4}, {2}, "needs a 3-D input [N, C, L]"}}) {
    OnnxBuilder b(12, c.input);
    set_ints(b.node("MaxPool", {"input"}, {"output"}, "pool"), "kernel_shape", c.kernel);
    EXPECT_IO_ERROR(read_onnx(save(b)), path_, "node 'pool' (MaxPool, opset 12)", c.needs,
                    "found " + shape_str(c.input));
  }
}

}  // namespace
}  // namespace resnet::io
