// The inference commands end to end, as a user runs them: export to ONNX and run or bench
// or predict with the file; bench's JSON contract in every precision and in training mode;
// quantize on a small checkpoint, then eval of what it wrote. Every number is checked
// against the same model run in-process, or against what another command reported.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli_runner.h"
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
using testing::run_cli;
namespace fs = std::filesystem;

const float kTolerance = 1e-4f;  // fraction of the reference's max |x| (the numerics contract)

// The command's stdout as one JSON object on one line.
nlohmann::json one_json_line(const testing::CliResult& r) {
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << "one JSON line: " << r.out;
  return nlohmann::json::parse(r.out);
}

// Multiply-adds of one image through `name` at channels x size x size.
double macs_per_image(const std::string& name, int64_t channels, int64_t size) {
  models::ModelOptions o;
  o.in_channels = channels;
  nn::ModulePtr m = models::build(name, o);
  m->eval();
  infer::Graph g = infer::lower_module(*m);
  g.infer_shapes({1, channels, size, size});
  return static_cast<double>(infer::count_macs(g));
}

std::vector<double> softmax(const float* logits, int64_t n) {
  const double top = *std::max_element(logits, logits + n);
  std::vector<double> p(static_cast<size_t>(n));
  double sum = 0;
  for (int64_t j = 0; j < n; ++j) sum += p[j] = std::exp(static_cast<double>(logits[j]) - top);
  for (double& v : p) v /= sum;
  return p;
}

// --- export, then run / bench / predict with the ONNX file ---

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

// --- bench's JSON contract ---

class BenchJson : public ::testing::TestWithParam<std::string> {};

TEST_P(BenchJson, InferOneLineWithTheContractFields) {
  const std::string dtype = GetParam();
  auto r = run_cli(
      "bench --model resnet20 --in-channels 1 --size 28 --batch 2 --iters 2 --warmup 0 --json "
      "--dtype " +
      dtype);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = one_json_line(r);
  EXPECT_EQ(j.at("model"), "resnet20");
  EXPECT_EQ(j.at("mode"), "infer");
  EXPECT_EQ(j.at("dtype"), dtype);
  EXPECT_EQ(j.at("batch"), 2);
  EXPECT_EQ(j.at("in_channels"), 1);
  EXPECT_EQ(j.at("size"), 28);
  const double ips = j.at("images_per_s").get<double>();
  const double p50 = j.at("latency_ms_p50").get<double>();
  const double gflops = j.at("gflops").get<double>();
  EXPECT_GT(ips, 0);
  EXPECT_GT(p50, 0);
  EXPECT_GE(j.at("latency_ms_p90").get<double>(), p50);
  EXPECT_NEAR(ips, 2 * 1000.0 / p50, 1e-9 * ips);
  const double gmacs = j.at("gmacs_per_image").get<double>();
  EXPECT_NEAR(gmacs, macs_per_image("resnet20", 1, 28) * 1e-9, 1e-12);
  EXPECT_NEAR(gflops, 2 * gmacs * ips, 1e-9 * gflops);
  EXPECT_GT(j.at("fp32_fma_peak_gflops").get<double>(), 0);
  EXPECT_NEAR(j.at("fraction_of_fp32_peak").get<double>(),
              gflops / j.at("fp32_fma_peak_gflops").get<double>(), 1e-12);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, BenchJson, ::testing::Values("f32", "bf16", "int8"));

TEST(BenchTrain, TimesAFullStep) {
  auto r = run_cli(
      "bench --model resnet20 --in-channels 1 --size 28 --batch 2 --iters 2 --warmup 0 --json "
      "--mode train");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = one_json_line(r);
  EXPECT_EQ(j.at("mode"), "train");
  EXPECT_EQ(j.at("dtype"), "f32");
  EXPECT_GT(j.at("images_per_s").get<double>(), 0);
  EXPECT_GT(j.at("latency_ms_p50").get<double>(), 0);
  EXPECT_GT(j.at("gflops").get<double>(), 0);
  EXPECT_GT(j.at("fraction_of_fp32_peak").get<double>(), 0);
  // The whole process's high-water mark: at least the binary and oneDNN's kernels.
  EXPECT_GT(j.at("peak_rss_bytes").get<int64_t>(), int64_t{4} << 20);
  EXPECT_LT(j.at("peak_rss_bytes").get<int64_t>(), int64_t{8} << 30);
  // Forward, backward-data and backward-weights: three times the forward work.
  EXPECT_NEAR(j.at("gmacs_per_image").get<double>(), 3 * macs_per_image("resnet20", 1, 28) * 1e-9,
              1e-12);
}

TEST(BenchTrain, RefusesReducedPrecision) {
  for (const char* dtype : {"int8", "bf16"}) {
    auto r = run_cli(
        "bench --model resnet20 --in-channels 1 --size 28 --batch 2 --iters 1 --warmup 0 "
        "--mode train --dtype " +
        std::string(dtype));
    expect_clean_failure(r, {"--dtype " + std::string(dtype), "f32"});
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
}

// --- quantize, then eval ---

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
