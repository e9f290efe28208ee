// ONNX's own node tests (Debian's libonnx-testdata) for the operators the importer reads,
// run through `resnet run` as a user would: each model's first input is the image, its
// other inputs (a Conv's W, a Gemm's B, ...) become initializers holding the test's
// values, since our importer takes weights as constants; every graph output is written
// (--output a.npy,b.npy for several) and checked. Every test ends as one of:
//   pass     every output matches the test's: floats within 1e-4 of the largest magnitude
//            (+1e-5), integers (MaxPool's Indices) and bools (Dropout's mask) exactly
//   refused  `resnet run` exits non-zero with one line naming the model file
// and anything else (a crash, a wrong number, a silent success) fails. The outcomes are
// committed below, so a change in what we run or refuse is a visible diff; the
// per-operator pass rates are printed and quoted in the README.

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "cli/cli_runner.h"
#include "resnet/io/npy.h"

namespace resnet::testing {
namespace {

namespace fs = std::filesystem;

const fs::path kNodeTests = "/usr/share/libonnx-testdata/data/node";

enum class Outcome { pass, refused };

// clang-format off
// The committed outcomes. A test not listed here is not run.
const std::map<std::string, Outcome> kExpected = {
#include "onnx_conformance_outcomes.inc"
};
// clang-format on

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// An INT64 or BOOL TensorProto as an i64 Tensor (raw_data, int64_data or int32_data);
// undefined for other types.
Tensor integer_tensor(const onnx::TensorProto& t) {
  const bool is_bool = t.data_type() == onnx::TensorProto_DataType_BOOL;
  if (!is_bool && t.data_type() != onnx::TensorProto_DataType_INT64) return Tensor();
  Shape shape;
  for (int64_t d : t.dims()) shape.push_back(d);
  Tensor out(shape, DType::i64);
  const auto n = static_cast<size_t>(out.numel());
  const std::string& raw = t.raw_data();
  if (!raw.empty()) {
    if (raw.size() != n * (is_bool ? 1 : 8)) return Tensor();
    for (size_t i = 0; i < n; ++i) {
      int64_t v = raw[i] != 0;
      if (!is_bool) std::memcpy(&v, raw.data() + i * 8, 8);
      out.i64()[i] = v;
    }
  } else if (is_bool) {
    if (static_cast<size_t>(t.int32_data_size()) != n) return Tensor();
    for (size_t i = 0; i < n; ++i) out.i64()[i] = t.int32_data(static_cast<int>(i)) != 0;
  } else {
    if (static_cast<size_t>(t.int64_data_size()) != n) return Tensor();
    std::copy(t.int64_data().begin(), t.int64_data().end(), out.i64());
  }
  return out;
}

// A FLOAT TensorProto as a Tensor (raw_data or float_data); undefined for other types.
Tensor float_tensor(const onnx::TensorProto& t) {
  if (t.data_type() != onnx::TensorProto_DataType_FLOAT) return Tensor();
  Shape shape;
  for (int64_t d : t.dims()) shape.push_back(d);
  Tensor out(shape);
  if (!t.raw_data().empty()) {
    if (t.raw_data().size() != static_cast<size_t>(out.numel()) * 4) return Tensor();
    std::memcpy(out.f32(), t.raw_data().data(), t.raw_data().size());
  } else {
    if (t.float_data_size() != out.numel()) return Tensor();
    std::copy(t.float_data().begin(), t.float_data().end(), out.f32());
  }
  return out;
}

onnx::TensorProto read_tensor(const fs::path& p) {
  onnx::TensorProto t;
  EXPECT_TRUE(t.ParseFromString(read_bytes(p))) << p;
  return t;
}

struct NodeRun {
  bool ran = false;      // exit 0
  bool matched = false;  // output within tolerance
  std::string detail;    // the error line, or how far off
};

// Whether `got` (as resnet run wrote it) is the test's `want`: floats within 1e-4 of the
// largest magnitude (+1e-5), integers and bools exactly; `detail` says how far off.
bool output_matches(const fs::path& npy, const onnx::TensorProto& want_proto, std::string& detail) {
  const Tensor want_f = float_tensor(want_proto);
  const Tensor want = want_f.defined() ? want_f : integer_tensor(want_proto);
  if (!want.defined()) {
    detail = "test data of an unsupported type";
    return false;
  }
  const Tensor got = io::read_npy(
      npy.string(), want_f.defined() ? io::NpyIntegers::to_f32 : io::NpyIntegers::to_i64);
  if (got.shape() != want.shape() && got.numel() != want.numel()) {
    detail = "output " + got.shape_str() + ", expected " + want.shape_str();
    return false;
  }
  if (!want_f.defined()) {
    const bool same = std::equal(got.i64(), got.i64() + got.numel(), want.i64());
    detail = same ? "all integers equal" : "integers differ";
    return same;
  }
  const double diff = max_abs_diff(got.reshape(want.shape()), want);
  detail = "largest difference " + std::to_string(diff);
  return diff <= 1e-4 * max_abs(want) + 1e-5;
}

// Rewrites the node test in `dir` (inputs 1.. as initializers), runs it through
// `resnet run` in `work` with one --output path per graph output, and compares each with
// output_<i>.pb.
NodeRun run_node_test(const fs::path& dir, const fs::path& work) {
  onnx::ModelProto model;
  EXPECT_TRUE(model.ParseFromString(read_bytes(dir / "model.onnx")));
  const fs::path data = dir / "test_data_set_0";
  onnx::GraphProto& g = *model.mutable_graph();
  // Inputs after the first become initializers with the test's values.
  for (int i = g.input_size() - 1; i >= 1; --i) {
    const fs::path pb = data / ("input_" + std::to_string(i) + ".pb");
    if (!fs::exists(pb)) continue;
    onnx::TensorProto t = read_tensor(pb);
    t.set_name(g.input(i).name());
    *g.add_initializer() = t;
    g.mutable_input()->DeleteSubrange(i, 1);
  }
  const fs::path model_path = work / "model.onnx";
  std::ofstream(model_path, std::ios::binary) << model.SerializeAsString();
  NodeRun r;
  const Tensor x = float_tensor(read_tensor(data / "input_0.pb"));
  if (!x.defined()) {
    r.detail = "non-FLOAT test data";
    return r;
  }
  std::string outputs;
  for (int i = 0; i < g.output_size(); ++i)
    outputs += (i ? "," : "") + (work / ("y" + std::to_string(i) + ".npy")).string();
  io::write_npy((work / "x.npy").string(), x);
  const CliResult cli = run_cli("run --model " + model_path.string() + " --input " +
                                (work / "x.npy").string() + " --output " + outputs);
  r.ran = cli.exit_code == 0;
  if (!r.ran) {
    r.detail = cli.err;
    EXPECT_LT(cli.exit_code, 128) << dir << " died of a signal: " << cli.err;
    EXPECT_NE(cli.err.find(model_path.string()), std::string::npos)
        << dir << ": the refusal should name the file: " << cli.err;
    EXPECT_EQ(std::count(cli.err.begin(), cli.err.end(), '\n'), 1) << dir << ": " << cli.err;
    return r;
  }
  r.matched = true;
  for (int i = 0; i < g.output_size() && r.matched; ++i) {
    const fs::path want = data / ("output_" + std::to_string(i) + ".pb");
    std::string detail;
    r.matched =
        output_matches(work / ("y" + std::to_string(i) + ".npy"), read_tensor(want), detail);
    r.detail += (i ? "; " : "") + ("output " + std::to_string(i) + ": ") + detail;
  }
  return r;
}

// "test_averagepool_2d_pads" -> "averagepool": the operator part of a test's name.
std::string op_of(const std::string& test) {
  static const char* ops[] = {"globalaveragepool",
                              "averagepool",
                              "maxpool",
                              "batchnorm",
                              "basic_conv",
                              "conv",
                              "relu",
                              "add",
                              "gemm",
                              "flatten",
                              "identity",
                              "matmul",
                              "reshape",
                              "clip",
                              "dropout",
                              "mul",
                              "sub",
                              "div",
                              "reduce_mean",
                              "squeeze",
                              "softmax"};
  for (const char* op : ops)
    if (test.rfind(std::string("test_") + op, 0) == 0)
      return op == std::string("basic_conv") ? "conv" : op;
  return "?";
}

TEST(OnnxConformance, NodeTestsRunOrAreRefusedAsCommitted) {
  if (!fs::is_directory(kNodeTests))
    GTEST_SKIP() << kNodeTests << " is missing: install libonnx-testdata (scripts/setup.sh does)";
  const fs::path work = make_temp_dir("conformance");
  std::map<std::string, std::pair<int, int>> per_op;  // passed, run
  for (const auto& [test, expected] : kExpected) {
    SCOPED_TRACE(test);
    const fs::path dir = kNodeTests / test;
    ASSERT_TRUE(fs::exists(dir / "model.onnx")) << dir;
    const NodeRun r = run_node_test(dir, work);
    EXPECT_FALSE(r.ran && !r.matched) << test << " computed a wrong result: " << r.detail;
    const Outcome got = r.ran && r.matched ? Outcome::pass : Outcome::refused;
    std::string line = r.detail.substr(0, r.detail.find('\n'));
    std::printf("conformance-result %s %s  %s\n", test.c_str(),
                got == Outcome::pass ? "pass" : "refused", line.c_str());
    EXPECT_EQ(got == Outcome::pass, expected == Outcome::pass)
        << test << ": committed " << (expected == Outcome::pass ? "pass" : "refused") << ", now "
        << (got == Outcome::pass ? "passes" : "refused: " + r.detail);
    auto& [passed, total] = per_op[op_of(test)];
    passed += got == Outcome::pass;
    ++total;
  }
  for (const auto& [op, counts] : per_op)
    std::printf("conformance %-18s %3d of %3d pass\n", op.c_str(), counts.first, counts.second);
  fs::remove_all(work);
}

}  // namespace
}  // namespace resnet::testing
