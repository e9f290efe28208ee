// The inference commands on an exported ONNX file, as a user runs them: export, then run,
// bench or predict with the file. Every number is checked against the same model run
// in-process, or against what another command reported.

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

// resnet20 (3 channels, 10 classes) with deterministic weights, as a bare state_dict, and
// the same model exported to ONNX by `resnet export`.
class InferenceOnnx : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = testing::make_temp_dir("inference_onnx");
    model_ = models::build("resnet20");
    testing::fill_deterministic(*model_, 41);
    model_->eval();
    weights_ = path("weights.safetensors");
    io::save_state_dict(*model_, weights_);
    onnx_ = path("resnet20.onnx");
    export_ = run_cli("export --model resnet20 --weights " + weights_ + " --onnx " + onnx_);
    input_ = path("input.npy");
    io::write_npy(input_, testing::deterministic_tensor(41, "input", {2, 3, 32, 32}));
  }
  static void TearDownTestSuite() {
    model_.reset();
    fs::remove_all(dir_);
  }
  void SetUp() override { ASSERT_EQ(export_.exit_code, 0) << export_.err; }

  static std::string path(const std::string& name) { return (dir_ / name).string(); }

  static fs::path dir_;
  static nn::ModulePtr model_;
  static std::string weights_, onnx_, input_;
  static testing::CliResult export_;
};
fs::path InferenceOnnx::dir_;
nn::ModulePtr InferenceOnnx::model_;
std::string InferenceOnnx::weights_, InferenceOnnx::onnx_, InferenceOnnx::input_;
testing::CliResult InferenceOnnx::export_;

TEST_F(InferenceOnnx, ExportReportsWhatItWrote) {
  EXPECT_TRUE(fs::exists(onnx_));
  EXPECT_NE(export_.out.find("wrote " + onnx_), std::string::npos) << export_.out;
  EXPECT_NE(export_.out.find("opset 13"), std::string::npos) << export_.out;
}

TEST_F(InferenceOnnx, RunOnnxMatchesRunZooModel) {
  const std::string from_onnx = path("y_onnx.npy"), from_zoo = path("y_zoo.npy");
  auto a = run_cli("run --model " + onnx_ + " --input " + input_ + " --output " + from_onnx);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  auto b = run_cli("run --model resnet20 --weights " + weights_ + " --input " + input_ +
                   " --output " + from_zoo);
  ASSERT_EQ(b.exit_code, 0) << b.err;
  const Tensor ya = io::read_npy(from_onnx), yb = io::read_npy(from_zoo);
  ASSERT_EQ(ya.shape(), (Shape{2, 10}));
  ASSERT_EQ(yb.shape(), (Shape{2, 10}));
  // And both are the model's eval forward on the same input, run here.
  nn::GradEnabledGuard no_grad(false);
  const Tensor want = model_->forward(io::read_npy(input_));
  ASSERT_GT(max_abs(want), 0.f);
  EXPECT_LE(max_abs_diff(yb, want), kTolerance * max_abs(want));
  EXPECT_LE(max_abs_diff(ya, want), kTolerance * max_abs(want));
  EXPECT_LE(max_abs_diff(ya, yb), kTolerance * max_abs(yb));
}

// An imported file exported again is the same network: the same output, bit for bit.
TEST_F(InferenceOnnx, ReexportOfOnnxComputesTheSame) {
  const std::string again = path("again.onnx");
  auto e = run_cli("export --model " + onnx_ + " --onnx " + again);
  ASSERT_EQ(e.exit_code, 0) << e.err;
  const std::string a = path("y_first.npy"), b = path("y_again.npy");
  ASSERT_EQ(run_cli("run --model " + onnx_ + " --input " + input_ + " --output " + a).exit_code, 0);
  ASSERT_EQ(run_cli("run --model " + again + " --input " + input_ + " --output " + b).exit_code, 0);
  const Tensor ya = io::read_npy(a), yb = io::read_npy(b);
  ASSERT_EQ(yb.shape(), ya.shape());
  EXPECT_EQ(max_abs_diff(ya, yb), 0.f);
  EXPECT_GT(max_abs(ya), 0.f);
}

TEST_F(InferenceOnnx, RunOnnxRefusesTraining) {
  const std::string out = path("y_train.npy");
  auto r = run_cli("run --model " + onnx_ + " --train --input " + input_ + " --output " + out);
  expect_clean_failure(r, {onnx_, "--train"});
  EXPECT_FALSE(fs::exists(out)) << "nothing written on refusal";
  expect_clean_failure(run_cli("run --model " + onnx_ + " --weights " + weights_ + " --input " +
                               input_ + " --output " + out),
                       {"--weights", onnx_});
}

TEST_F(InferenceOnnx, BenchOnnxJson) {
  auto r = run_cli("bench --model " + onnx_ + " --json --iters 2 --warmup 0 --size 32");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = one_json_line(r);
  EXPECT_EQ(j.at("model"), onnx_);
  EXPECT_EQ(j.at("mode"), "infer");
  EXPECT_EQ(j.at("dtype"), "f32");
  EXPECT_EQ(j.at("in_channels"), 3) << "read from the file's first convolution";
  EXPECT_EQ(j.at("size"), 32);
  EXPECT_EQ(j.at("iters"), 2);
  EXPECT_GT(j.at("images_per_s").get<double>(), 0);
  EXPECT_GT(j.at("latency_ms_p50").get<double>(), 0);
  // The file holds resnet20: the same work per image as the zoo model.
  EXPECT_NEAR(j.at("gmacs_per_image").get<double>(), macs_per_image("resnet20", 3, 32) * 1e-9,
              1e-12);
  EXPECT_GT(j.at("gflops").get<double>(), 0);
  // The ONNX file has no training path.
  expect_clean_failure(run_cli("bench --model " + onnx_ + " --mode train --iters 1 --size 32"),
                       {"--mode train", onnx_});
}

// Parses predict's text: "PATH" then K lines "  PROB  CLASS".
std::vector<std::pair<double, std::string>> parse_one_prediction(const std::string& out,
                                                                 const std::string& image) {
  std::istringstream in(out);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, image);
  std::vector<std::pair<double, std::string>> top;
  while (std::getline(in, line)) {
    EXPECT_EQ(line.rfind("  ", 0), 0u) << line;
    std::istringstream fields(line);
    double p = -1;
    std::string name;
    fields >> p >> name;
    top.push_back({p, name});
  }
  return top;
}

TEST_F(InferenceOnnx, PredictOnnxUsesImagenetPreprocessing) {
  // An RGB 300x260 PNG: resized to 256 on the shorter side and center-cropped to 224.
  const data::ImageShape shape{3, 260, 300};
  std::vector<uint8_t> px(static_cast<size_t>(shape.numel()));
  for (size_t p = 0; p < px.size(); ++p)
    px[p] = static_cast<uint8_t>((p * 7 + (p / 300) * 3 + (p / (300 * 260)) * 50) % 256);
  const std::string image = path("photo.png");
  data::write_png(image, px.data(), shape);

  // What torchvision's recipe and the model give, computed here.
  const Tensor x = data::preprocess_image(image, data::imagenet_preprocessing());
  ASSERT_EQ(x.shape(), (Shape{3, 224, 224}));
  nn::GradEnabledGuard no_grad(false);
  const Tensor logits = model_->forward(x.reshape({1, 3, 224, 224}));
  const std::vector<double> want = softmax(logits.f32(), 10);
  std::vector<int64_t> order(10);
  for (int64_t i = 0; i < 10; ++i) order[static_cast<size_t>(i)] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return want[a] > want[b]; });

  auto r = run_cli("predict --json --model " + onnx_ + " " + image);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = one_json_line(r);
  EXPECT_EQ(j.at("preprocess"), "imagenet") << "the default for an ONNX file";
  EXPECT_EQ(j.at("top_k"), 5);
  const auto& top = j.at("predictions").at(0).at("top");
  ASSERT_EQ(top.size(), 5u);
  double sum = 0;
  for (size_t i = 0; i < top.size(); ++i) {
    const int64_t index = top[i].at("index").get<int64_t>();
    const double p = top[i].at("probability").get<double>();
    EXPECT_EQ(top[i].at("class"), std::to_string(index));
    EXPECT_NEAR(p, want[static_cast<size_t>(index)], 1e-4) << "class " << index;
    // Neighbours closer than the tolerance may swap; otherwise the order is the reference's.
    if (std::abs(want[order[i]] - p) > 1e-4) ADD_FAILURE() << "rank " << i << " is " << index;
    sum += p;
  }
  EXPECT_LT(sum, 1.0);
  EXPECT_GT(sum, 0.5) << "the top 5 of 10 classes hold at least half the mass";

  auto text = run_cli("predict --model " + onnx_ + " " + image + " --top-k 3");
  ASSERT_EQ(text.exit_code, 0) << text.err;
  const auto lines = parse_one_prediction(text.out, image);
  ASSERT_EQ(lines.size(), 3u) << text.out;
  double text_sum = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i].second, top[i].at("class").get<std::string>());
    EXPECT_NEAR(lines[i].first, top[i].at("probability").get<double>(), 5e-5);  // 4 decimals
    if (i > 0) {
      EXPECT_LE(lines[i].first, lines[i - 1].first);
    }
    text_sum += lines[i].first;
  }
  EXPECT_LE(text_sum, 1.0);
}

}  // namespace
}  // namespace resnet
