// quantize on a small checkpoint, then eval and predict of what it wrote, end to end;
// every number checked against the same model run in-process or another command's report.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "inference_cli_util.h"
#include "resnet/data/image_codec.h"
#include "resnet/data/preprocess.h"
#include "resnet/infer/calibration.h"
#include "resnet/infer/compiled_model.h"
#include "resnet/infer/lower_module.h"
#include "resnet/io/checkpoint.h"
#include "resnet/io/npy.h"
#include "resnet/io/safetensors.h"
#include "resnet/models/zoo.h"
#include "resnet/train/checkpoint_info.h"
#include "support/deterministic_weights.h"

namespace resnet {
namespace {

using testing::expect_clean_failure;
using testing::kTolerance;
using testing::macs_per_image;
using testing::one_json_line;
using testing::run_cli;
using testing::softmax;
namespace fs = std::filesystem;

const std::vector<std::string> kClasses = {"ant", "bee", "cat"};

// A 1x8x8 image whose pattern depends on its class and number.
std::vector<uint8_t> pattern(int64_t label, int64_t n) {
  std::vector<uint8_t> px(64);
  for (size_t p = 0; p < px.size(); ++p)
    px[p] = static_cast<uint8_t>((label * 80 + n * 13 + static_cast<int64_t>(p) * (label + 1) * 7) %
                                 256);
  return px;
}

// An image folder with `classes` classes: `train` images per class and 3, 2, 2, ... test ones.
void write_folder(const fs::path& root, const std::vector<std::string>& classes, int64_t train) {
  for (size_t c = 0; c < classes.size(); ++c) {
    for (const char* split : {"train", "val"}) {
      const fs::path dir = root / split / classes[c];
      fs::create_directories(dir);
      const int64_t n = std::string(split) == "train" ? train : (c == 0 ? 3 : 2);
      for (int64_t i = 0; i < n; ++i)
        data::write_png((dir / ("img" + std::to_string(i) + ".png")).string(),
                        pattern(static_cast<int64_t>(c), i).data(), {1, 8, 8});
    }
  }
}

class Quantize : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = testing::make_temp_dir("quantize");
    write_folder(dir_ / "data", kClasses, 4);  // 12 training images, 7 test images
    spec_ = "folder:" + (dir_ / "data").string();
    train::CheckpointInfo info;
    info.model = "resnet20";
    info.options.num_classes = 3;
    info.options.in_channels = 1;
    info.input_height = info.input_width = 8;
    info.mean = {0.5f};
    info.std = {0.25f};
    info.class_names = kClasses;
    info.dataset = spec_;
    info.epoch = 2;
    nn::ModulePtr model = models::build(info.model, info.options);
    testing::fill_deterministic(*model, 5);
    checkpoint_ = (dir_ / "best.safetensors").string();
    io::save_state_dict(*model, checkpoint_, info.to_metadata());
    quantized_ = (dir_ / "best_int8.safetensors").string();
    quantize_ = run_cli("quantize --model " + checkpoint_ + " --data " + spec_ + " --out " +
                        quantized_ + " --json");
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  void SetUp() override { ASSERT_EQ(quantize_.exit_code, 0) << quantize_.err; }

  static nlohmann::json eval_json(const std::string& checkpoint, const std::string& extra = "") {
    auto r = run_cli("eval --json --checkpoint " + checkpoint + " --data " + spec_ + extra);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    if (r.exit_code != 0) return nlohmann::json::object();
    return one_json_line(r);
  }

  static fs::path dir_;
  static std::string spec_, checkpoint_, quantized_;
  static testing::CliResult quantize_;
};
fs::path Quantize::dir_;
std::string Quantize::spec_, Quantize::checkpoint_, Quantize::quantized_;
testing::CliResult Quantize::quantize_;

TEST_F(Quantize, JsonReportsFractions) {
  const auto j = one_json_line(quantize_);
  EXPECT_EQ(j.at("checkpoint"), checkpoint_);
  EXPECT_EQ(j.at("out"), quantized_);
  EXPECT_EQ(j.at("calibration_images"), 12) << "the whole training split (fewer than 2000)";
  EXPECT_EQ(j.at("test_images"), 7);
  for (const char* key : {"top1_f32", "top1_int8", "top1_agreement"}) {
    const double v = j.at(key).get<double>();
    EXPECT_GE(v, 0.0) << key;
    EXPECT_LE(v, 1.0) << key;
    // Seven test images: every fraction is a count out of seven.
    EXPECT_NEAR(v * 7, std::round(v * 7), 1e-9) << key;
  }
  // Agreement bounds the accuracy gap: |top1_f32 - top1_int8| <= 1 - agreement.
  EXPECT_LE(std::abs(j.at("top1_f32").get<double>() - j.at("top1_int8").get<double>()),
            1.0 - j.at("top1_agreement").get<double>() + 1e-9);
}

TEST_F(Quantize, CalibrationImagesFlagIsHonoured) {
  const std::string out = (dir_ / "five.safetensors").string();
  auto r = run_cli("quantize --model " + checkpoint_ + " --data " + spec_ + " --out " + out +
                   " --json --calibration-images 5 --batch 4");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = one_json_line(r);
  // Batches of four until five are seen: eight images.
  EXPECT_GE(j.at("calibration_images").get<int64_t>(), 5);
  EXPECT_LE(j.at("calibration_images").get<int64_t>(), 8);
  const auto file = io::read_safetensors(out);
  ASSERT_TRUE(file.metadata.count("int8_calibration"));
  EXPECT_EQ(infer::Calibration::from_json(file.metadata.at("int8_calibration"), out).images,
            j.at("calibration_images").get<int64_t>());
}

TEST_F(Quantize, CheckpointKeepsTheStateDictAndAddsCalibration) {
  const io::SafetensorsFile in = io::read_safetensors(checkpoint_);
  const io::SafetensorsFile out = io::read_safetensors(quantized_);
  // The same tensors under the same names, bit for bit: PyTorch loads it as it loads the
  // input checkpoint.
  ASSERT_EQ(out.tensors.size(), in.tensors.size());
  for (size_t i = 0; i < in.tensors.size(); ++i) {
    const auto& [name, want] = in.tensors[i];
    const Tensor* got = out.find(name);
    ASSERT_NE(got, nullptr) << name;
    EXPECT_EQ(got->dtype(), want.dtype()) << name;
    ASSERT_EQ(got->shape(), want.shape()) << name;
    EXPECT_EQ(std::memcmp(got->raw(), want.raw(), want.nbytes()), 0) << name;
  }
  // Every metadata key of the input survives; one is added.
  for (const auto& [key, value] : in.metadata) {
    ASSERT_TRUE(out.metadata.count(key)) << key;
    EXPECT_EQ(out.metadata.at(key), value) << key;
  }
  EXPECT_EQ(out.metadata.size(), in.metadata.size() + 1);
  ASSERT_TRUE(out.metadata.count("int8_calibration"));
  const infer::Calibration c =
      infer::Calibration::from_json(out.metadata.at("int8_calibration"), quantized_);
  EXPECT_EQ(c.images, 12);
  // Ranges for the graph's activations, by the lowered graph's value names.
  nn::ModulePtr model = models::build("resnet20", train::read_checkpoint_info(quantized_).options);
  io::load_state_dict(*model, quantized_);  // strict: every name fits the architecture
  model->eval();
  const infer::Graph g = infer::lower_module(*model);
  std::map<std::string, int> value_ids;
  for (size_t v = 0; v < g.values.size(); ++v) value_ids[g.values[v].name] = static_cast<int>(v);
  for (const auto& [name, range] : c.max_abs) {
    EXPECT_TRUE(value_ids.count(name)) << "'" << name << "' is no value of the graph";
    EXPECT_TRUE(std::isfinite(range)) << name;
    EXPECT_GE(range, 0.f) << name;
  }
  // The input's range is the largest normalized training pixel: (p / 255 - 0.5) / 0.25.
  double input_range = 0;
  for (int64_t label = 0; label < 3; ++label)
    for (int64_t n = 0; n < 4; ++n)
      for (uint8_t p : pattern(label, n))
        input_range = std::max(input_range, std::abs((p / 255.0 - 0.5) / 0.25));
  ASSERT_TRUE(c.max_abs.count(g.values[0].name)) << g.values[0].name;
  EXPECT_NEAR(c.max_abs.at(g.values[0].name), input_range, 1e-5);
  ASSERT_TRUE(c.max_abs.count(g.values[g.output].name)) << "the output's range";
  // Every ReLU's output is quantized, so it has a range; zero channels added by a pad
  // leave the range as it was, and a subsample can only shrink it.
  int relus = 0;
  for (const infer::Node& n : g.nodes) {
    const std::string& out_name = g.values[n.output].name;
    if (n.op == infer::OpKind::relu) {
      ++relus;
      ASSERT_TRUE(c.max_abs.count(out_name)) << out_name;
      EXPECT_GT(c.max_abs.at(out_name), 0.f) << out_name;
    }
    if (n.op == infer::OpKind::pad_channels || n.op == infer::OpKind::subsample) {
      const std::string& in_name = g.values[n.inputs[0]].name;
      ASSERT_TRUE(c.max_abs.count(out_name) && c.max_abs.count(in_name)) << n.name;
      if (n.op == infer::OpKind::pad_channels) {
        EXPECT_EQ(c.max_abs.at(out_name), c.max_abs.at(in_name)) << n.name;
      } else {
        EXPECT_LE(c.max_abs.at(out_name), c.max_abs.at(in_name)) << n.name;
      }
    }
  }
  EXPECT_EQ(relus, 19);
}

TEST_F(Quantize, EvalRunsTheQuantizedCheckpointInInt8) {
  const auto q = one_json_line(quantize_);
  const auto original = eval_json(checkpoint_);
  ASSERT_FALSE(original.empty());
  EXPECT_EQ(original.at("dtype"), "f32");
  EXPECT_DOUBLE_EQ(original.at("top1").get<double>(), q.at("top1_f32").get<double>());

  const auto int8 = eval_json(quantized_);
  ASSERT_FALSE(int8.empty());
  EXPECT_EQ(int8.at("dtype"), "int8") << "the default for a quantized checkpoint";
  EXPECT_EQ(int8.at("count"), 7);
  EXPECT_DOUBLE_EQ(int8.at("top1").get<double>(), q.at("top1_int8").get<double>());

  const auto f32 = eval_json(quantized_, " --dtype f32");
  ASSERT_FALSE(f32.empty());
  EXPECT_EQ(f32.at("dtype"), "f32");
  EXPECT_DOUBLE_EQ(f32.at("top1").get<double>(), original.at("top1").get<double>());
  EXPECT_DOUBLE_EQ(f32.at("loss").get<double>(), original.at("loss").get<double>());
  EXPECT_EQ(f32.at("confusion"), original.at("confusion"));

  // int8 of a checkpoint without ranges is refused, naming the way to make them.
  auto r = run_cli("eval --checkpoint " + checkpoint_ + " --data " + spec_ + " --dtype int8");
  expect_clean_failure(r, {"--dtype int8", "resnet quantize"});
}

// Predict runs a quantized checkpoint as eval does by default: through the int8 graph with
// the checkpoint's calibration, on the checkpoint's own preprocessing.
TEST_F(Quantize, PredictRunsTheQuantizedCheckpointInInt8) {
  const std::string image = (dir_ / "data" / "val" / "bee" / "img1.png").string();
  data::Preprocessing p;
  p.name = "checkpoint";
  p.channels = 1;
  p.resize_height = p.resize_width = 8;
  p.mean = {0.5f};
  p.std = {0.25f};
  const Tensor x = data::preprocess_image(image, p).reshape({1, 1, 8, 8});
  const train::TrainedModel m = train::load_trained_model(quantized_);
  ASSERT_FALSE(m.int8_calibration.empty());
  infer::CompileOptions options;
  options.precision = infer::Precision::int8;
  options.calibration = std::make_shared<infer::Calibration>(
      infer::Calibration::from_json(m.int8_calibration, quantized_));
  infer::CompiledModel int8(infer::lower_module(*m.module), options);
  const Tensor int8_logits = int8.run(x);
  nn::GradEnabledGuard no_grad(false);
  const Tensor f32_logits = m.module->forward(x);
  const std::vector<double> want_int8 = softmax(int8_logits.f32(), 3);
  const std::vector<double> want_f32 = softmax(f32_logits.f32(), 3);
  double gap = 0;
  for (size_t i = 0; i < 3; ++i) gap = std::max(gap, std::abs(want_int8[i] - want_f32[i]));
  // int8 stays close to f32 here, but not as close as two runs of one path are.
  ASSERT_GT(gap, 1e-5) << "int8 and f32 must differ for this check to tell them apart";
  const double tolerance = gap / 10;

  auto probabilities = [](const nlohmann::json& j) {
    std::vector<double> p(3, -1);
    for (const auto& t : j.at("predictions").at(0).at("top"))
      p.at(t.at("index").get<size_t>()) = t.at("probability").get<double>();
    return p;
  };
  // Runs predict with `args`, and checks the dtype it reports and its probabilities.
  auto expect_predict = [&](const std::string& args, const char* dtype,
                            const std::vector<double>& want) {
    auto r = run_cli("predict --json " + args + " " + image);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = one_json_line(r);
    EXPECT_EQ(j.value("dtype", std::string("(none)")), dtype) << args;
    const std::vector<double> got = probabilities(j);
    for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(got[i], want[i], tolerance) << args << i;
  };
  for (const std::string flag : {"--checkpoint ", "--model "}) {
    expect_predict(flag + quantized_, "int8", want_int8);
    expect_predict(flag + checkpoint_, "f32", want_f32);
    // --dtype f32 runs the quantized checkpoint's own f32 weights: the f32 answer.
    expect_predict("--dtype f32 " + flag + quantized_, "f32", want_f32);
  }
  // int8 needs a calibration: the unquantized checkpoint has none.
  auto refused = run_cli("predict --dtype int8 --checkpoint " + checkpoint_ + " " + image);
  expect_clean_failure(refused, {"resnet quantize"});
}

// `resnet export` writes the quantized checkpoint as QDQ ONNX; `resnet run --dtype int8`
// on that file and on the checkpoint compute the same int8 model (the file's clamps before
// fused adds and its INT32 biases aside).
TEST_F(Quantize, ExportWritesQdqThatRunsAsTheCheckpointDoes) {
  const std::string onnx = (dir_ / "q.onnx").string(), x = (dir_ / "x.npy").string();
  auto e = run_cli("export --model " + quantized_ + " --onnx " + onnx);
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_NE(e.out.find("quantized (QDQ): "), std::string::npos) << e.out;
  EXPECT_NE(e.out.find("19 convolutions with INT8 weights"), std::string::npos) << e.out;
  io::write_npy(x, testing::deterministic_tensor(4, "unseen", {3, 1, 8, 8}));
  const std::string from_file = (dir_ / "file.npy").string(),
                    from_ckpt = (dir_ / "ckpt.npy").string();
  auto a = run_cli("run --model " + onnx + " --dtype int8 --input " + x + " --output " + from_file);
  auto b = run_cli("run --model " + quantized_ + " --dtype int8 --input " + x + " --output " +
                   from_ckpt);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  const Tensor ya = io::read_npy(from_file), yb = io::read_npy(from_ckpt);
  EXPECT_LE(max_abs_diff(ya, yb), 0.02f * max_abs(yb));
  auto f = run_cli("export --model " + quantized_ + " --onnx " + onnx + " --float");
  ASSERT_EQ(f.exit_code, 0) << f.err;
  EXPECT_EQ(f.out.find("quantized"), std::string::npos) << f.out;
}

TEST_F(Quantize, RefusesMissingCheckpoint) {
  const std::string missing = (dir_ / "missing.safetensors").string();
  const std::string out = (dir_ / "never.safetensors").string();
  auto r = run_cli("quantize --model " + missing + " --data " + spec_ + " --out " + out);
  expect_clean_failure(r, {missing});
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(Quantize, RefusesDatasetWithOtherClassCount) {
  const fs::path four = dir_ / "four";
  write_folder(four, {"ant", "bee", "cat", "dog"}, 1);
  const std::string spec = "folder:" + four.string();
  const std::string out = (dir_ / "never.safetensors").string();
  auto r = run_cli("quantize --model " + checkpoint_ + " --data " + spec + " --out " + out);
  expect_clean_failure(r, {spec, "expected 3 classes", checkpoint_, "got 4"});
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace resnet
