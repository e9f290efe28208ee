// resnet eval and resnet predict as a user meets them: a tiny image-folder dataset and a
// checkpoint written the way the trainer writes one, the numbers checked against the same
// model run in-process, and bad input ending in one line on stderr and a non-zero exit.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "resnet/data/image_codec.h"
#include "resnet/data/open_dataset.h"
#include "resnet/data/transforms.h"
#include "resnet/io/checkpoint.h"
#include "resnet/models/zoo.h"
#include "resnet/train/checkpoint_info.h"
#include "resnet/train/cross_entropy.h"

namespace resnet {
namespace {

using testing::expect_clean_failure;
using testing::run_cli;
namespace fs = std::filesystem;

const std::vector<std::string> kClasses = {"ant", "bee", "cat"};
constexpr int64_t kTestPerClass[] = {3, 2, 2};  // uneven, so `count` is checked for real

// A channels x height x width image whose pattern depends on its class and number.
std::vector<uint8_t> pattern(int64_t label, int64_t n, int64_t channels = 1, int64_t height = 8,
                             int64_t width = 8) {
  std::vector<uint8_t> px(static_cast<size_t>(channels * height * width));
  for (size_t p = 0; p < px.size(); ++p) {
    px[p] = static_cast<uint8_t>((label * 80 + n * 13 + static_cast<int64_t>(p) * (label + 1) * 7) %
                                 256);
  }
  return px;
}

train::CheckpointInfo info_for(const std::string& dataset) {
  train::CheckpointInfo info;
  info.model = "resnet20";
  info.options.num_classes = 3;
  info.options.in_channels = 1;
  info.input_height = 8;
  info.input_width = 8;
  info.mean = {0.5f};
  info.std = {0.25f};
  info.class_names = kClasses;
  info.dataset = dataset;
  info.epoch = 1;
  return info;
}

// Writes a checkpoint as the trainer does: the state_dict with the info as __metadata__.
void write_checkpoint(const std::string& path, const train::CheckpointInfo& info,
                      const std::string& model_name = "") {
  nn::ModulePtr model = models::build(model_name.empty() ? info.model : model_name, info.options);
  io::save_state_dict(*model, path, info.to_metadata());
}

class CliEvalPredict : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = testing::make_temp_dir("eval_predict");
    data_ = (dir_ / "data").string();
    for (size_t c = 0; c < kClasses.size(); ++c) {
      for (const char* split : {"train", "val"}) {
        const fs::path cls = fs::path(data_) / split / kClasses[c];
        fs::create_directories(cls);
        const int64_t n = std::string(split) == "train" ? 2 : kTestPerClass[c];
        for (int64_t i = 0; i < n; ++i) {
          std::ostringstream name;
          name << "img" << i << ".png";
          const std::string file = (cls / name.str()).string();
          data::write_png(file, pattern(static_cast<int64_t>(c), i).data(), {1, 8, 8});
        }
      }
    }
    spec_ = "folder:" + data_;
    checkpoint_ = (dir_ / "best.safetensors").string();
    write_checkpoint(checkpoint_, info_for(spec_));
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static std::string eval_args(const std::string& extra = "") {
    return "eval --checkpoint " + checkpoint_ + " --data " + spec_ + extra;
  }

  static fs::path dir_;
  static std::string data_, spec_, checkpoint_;
};
fs::path CliEvalPredict::dir_;
std::string CliEvalPredict::data_, CliEvalPredict::spec_, CliEvalPredict::checkpoint_;

TEST_F(CliEvalPredict, EvalJsonFractionsAndCount) {
  auto r = run_cli(eval_args(" --json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << "one JSON object: " << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("count"), 7);
  for (const char* key : {"top1", "top5"}) {
    EXPECT_GE(j.at(key).get<double>(), 0.0) << key;
    EXPECT_LE(j.at(key).get<double>(), 1.0) << key;
  }
  // Three classes: "top-5" is top-3, i.e. every class, so every sample counts.
  EXPECT_EQ(j.at("top5_k"), 3);
  EXPECT_DOUBLE_EQ(j.at("top5").get<double>(), 1.0);
  EXPECT_TRUE(std::isfinite(j.at("loss").get<double>()));
  ASSERT_EQ(j.at("per_class").size(), 3u);
  for (const auto& name : kClasses) {
    const double acc = j.at("per_class").at(name).get<double>();
    EXPECT_GE(acc, 0.0);
    EXPECT_LE(acc, 1.0);
  }
  const auto& confusion = j.at("confusion");
  ASSERT_EQ(confusion.size(), 3u);
  int64_t total = 0, diagonal = 0;
  for (size_t t = 0; t < 3; ++t) {
    ASSERT_EQ(confusion[t].size(), 3u);
    int64_t row = 0;
    for (size_t p = 0; p < 3; ++p) row += confusion[t][p].get<int64_t>();
    EXPECT_EQ(row, kTestPerClass[t]) << "row " << t << " holds the true class's samples";
    total += row;
    diagonal += confusion[t][t].get<int64_t>();
  }
  EXPECT_EQ(total, 7);
  EXPECT_DOUBLE_EQ(j.at("top1").get<double>(), static_cast<double>(diagonal) / 7.0);
}

// The same model run here, on the same normalized images, gives the same top-1 and loss.
TEST_F(CliEvalPredict, EvalMatchesInProcessModel) {
  const train::CheckpointInfo info = train::read_checkpoint_info(checkpoint_);
  nn::ModulePtr model = models::build(info.model, info.options);
  io::load_state_dict(*model, checkpoint_);
  model->eval();
  const auto test = data::open_dataset(spec_).test;
  const int64_t n = test->size();
  Tensor batch({n, 1, 8, 8});
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < n; ++i) {
    data::Example ex = test->get(i);
    data::normalize(ex.image, info.mean, info.std);
    std::copy(ex.image.f32(), ex.image.f32() + 64, batch.f32() + i * 64);
    labels.push_back(ex.label);
  }
  const Tensor logits = model->forward(batch);
  int64_t correct = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* row = logits.f32() + i * 3;
    correct += (std::max_element(row, row + 3) - row) == labels[static_cast<size_t>(i)];
  }
  const double loss = train::cross_entropy(logits, labels).loss;

  for (const char* batch_flag : {"", " --batch 3"}) {  // one batch, and a short last batch
    auto r = run_cli(eval_args(std::string(" --json") + batch_flag));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_DOUBLE_EQ(j.at("top1").get<double>(),
                     static_cast<double>(correct) / static_cast<double>(n))
        << batch_flag;
    EXPECT_NEAR(j.at("loss").get<double>(), loss, 1e-5) << batch_flag;
  }
}

TEST_F(CliEvalPredict, EvalTextReport) {
  auto r = run_cli(eval_args(" --threads 1"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* s : {"top-1", "top-3", "loss", "per-class accuracy", "confusion matrix",
                        "true\\pred", "ant", "bee", "cat", "7 images"}) {
    EXPECT_NE(r.out.find(s), std::string::npos) << s << " in:\n" << r.out;
  }
}

// Parses predict's text: "PATH" then K lines "  PROB  CLASS" per image.
std::vector<std::pair<std::string, std::vector<std::pair<double, std::string>>>> parse_predict(
    const std::string& out) {
  std::vector<std::pair<std::string, std::vector<std::pair<double, std::string>>>> images;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("  ", 0) != 0) {
      images.push_back({line, {}});
      continue;
    }
    EXPECT_FALSE(images.empty()) << "a class line before any image: " << line;
    if (images.empty()) break;
    std::istringstream fields(line);
    double p = -1;
    std::string name;
    fields >> p >> name;
    images.back().second.push_back({p, name});
  }
  return images;
}

TEST_F(CliEvalPredict, PredictPrintsTopKSorted) {
  const std::string a = data_ + "/val/ant/img0.png", b = data_ + "/val/cat/img1.png";
  for (int k : {1, 2, 3}) {
    auto r = run_cli("predict --checkpoint " + checkpoint_ + " " + a + " " + b + " --top-k " +
                     std::to_string(k));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto images = parse_predict(r.out);
    ASSERT_EQ(images.size(), 2u) << r.out;
    EXPECT_EQ(images[0].first, a);
    EXPECT_EQ(images[1].first, b);
    for (const auto& [path, top] : images) {
      ASSERT_EQ(top.size(), static_cast<size_t>(k)) << path;
      double sum = 0;
      for (size_t i = 0; i < top.size(); ++i) {
        EXPECT_GE(top[i].first, 0.0);
        if (i > 0) {
          EXPECT_LE(top[i].first, top[i - 1].first);
        }
        EXPECT_NE(std::find(kClasses.begin(), kClasses.end(), top[i].second), kClasses.end());
        sum += top[i].first;
      }
      EXPECT_LE(sum, 1.0 + 1e-3);  // printed with 4 decimals
      if (k == 3) {
        EXPECT_NEAR(sum, 1.0, 1e-3);
      }
    }
  }
}

TEST_F(CliEvalPredict, PredictJsonAndResize) {
  // An RGB 12x10 JPEG: decoded to the checkpoint's one channel and resized to 8x8.
  const std::string jpeg = (dir_ / "big.jpg").string();
  data::write_jpeg(jpeg, pattern(1, 0, 3, 12, 10).data(), {3, 12, 10});
  auto r = run_cli("predict --json --checkpoint " + checkpoint_ + " " + jpeg + " " + data_ +
                   "/val/bee/img0.png");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.at("predictions").size(), 2u);
  EXPECT_EQ(j.at("top_k"), 3);
  for (const auto& p : j.at("predictions")) {
    ASSERT_EQ(p.at("top").size(), 3u);
    double sum = 0, last = 2;
    for (const auto& t : p.at("top")) {
      const double prob = t.at("probability").get<double>();
      EXPECT_LE(prob, last);
      last = prob;
      sum += prob;
      EXPECT_EQ(t.at("class").get<std::string>(), kClasses.at(t.at("index").get<size_t>()));
    }
    EXPECT_NEAR(sum, 1.0, 1e-9);
  }
  EXPECT_EQ(j.at("predictions")[0].at("image"), jpeg);
}

// --model CHECKPOINT is --checkpoint CHECKPOINT: the checkpoint's own preprocessing and
// class names by default, the same numbers.
TEST_F(CliEvalPredict, PredictModelCheckpointUsesItsRecipe) {
  const std::string image = data_ + "/val/bee/img1.png";
  auto a = run_cli("predict --json --checkpoint " + checkpoint_ + " " + image);
  auto b = run_cli("predict --json --model " + checkpoint_ + " " + image);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  const auto ja = nlohmann::json::parse(a.out), jb = nlohmann::json::parse(b.out);
  EXPECT_EQ(ja.at("preprocess"), "checkpoint");
  EXPECT_EQ(jb.at("preprocess"), "checkpoint");
  EXPECT_EQ(ja.at("predictions"), jb.at("predictions"));
  // Its 1-channel network cannot take ImageNet's RGB recipe; `none` keeps the 8x8 image.
  expect_clean_failure(
      run_cli("predict --preprocess imagenet --checkpoint " + checkpoint_ + " " + image),
      {"--preprocess imagenet", "1", "none or checkpoint"});
  auto none = run_cli("predict --json --preprocess none --checkpoint " + checkpoint_ + " " + image);
  ASSERT_EQ(none.exit_code, 0) << none.err;
  EXPECT_EQ(nlohmann::json::parse(none.out).at("preprocess"), "none");
}

TEST_F(CliEvalPredict, HelpExitsZero) {
  for (const char* cmd : {"eval --help", "predict --help"}) {
    auto r = run_cli(cmd);
    EXPECT_EQ(r.exit_code, 0) << cmd;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << cmd;
  }
}

TEST_F(CliEvalPredict, RefusesMissingCheckpoint) {
  const std::string missing = (dir_ / "nope.safetensors").string();
  expect_clean_failure(run_cli("eval --checkpoint " + missing + " --data " + spec_), {missing});
  expect_clean_failure(
      run_cli("predict --checkpoint " + missing + " " + data_ + "/val/ant/img0.png"), {missing});
}

TEST_F(CliEvalPredict, RefusesBareStateDict) {
  const std::string bare = (dir_ / "bare.safetensors").string();
  nn::ModulePtr model = models::build("resnet20", info_for(spec_).options);
  io::save_state_dict(*model, bare);
  expect_clean_failure(run_cli("eval --checkpoint " + bare + " --data " + spec_),
                       {bare, "bare state_dict"});
  expect_clean_failure(run_cli("predict --checkpoint " + bare + " " + data_ + "/val/ant/img0.png"),
                       {bare, "bare state_dict"});
}

TEST_F(CliEvalPredict, RefusesCheckpointOfAnotherShape) {
  train::CheckpointInfo rgb = info_for(spec_);
  rgb.options.in_channels = 3;
  rgb.mean = {0.5f, 0.5f, 0.5f};
  rgb.std = {0.25f, 0.25f, 0.25f};
  const std::string rgb_path = (dir_ / "rgb.safetensors").string();
  write_checkpoint(rgb_path, rgb);
  expect_clean_failure(run_cli("eval --checkpoint " + rgb_path + " --data " + spec_),
                       {spec_, rgb_path, "3x8x8", "1x8x8", "in_channels 3"});

  train::CheckpointInfo big = info_for(spec_);
  big.input_height = big.input_width = 16;
  const std::string big_path = (dir_ / "big.safetensors").string();
  write_checkpoint(big_path, big);
  expect_clean_failure(run_cli("eval --checkpoint " + big_path + " --data " + spec_),
                       {spec_, big_path, "1x16x16", "1x8x8", "input_size 16x16"});

  // Metadata that names one architecture over the weights of another.
  const std::string lying = (dir_ / "lying.safetensors").string();
  train::CheckpointInfo deeper = info_for(spec_);
  deeper.model = "resnet32";
  write_checkpoint(lying, deeper, "resnet20");
  expect_clean_failure(run_cli("eval --checkpoint " + lying + " --data " + spec_), {lying});
}

TEST_F(CliEvalPredict, RefusesCheckpointOfOtherClasses) {
  train::CheckpointInfo other = info_for(spec_);
  other.class_names = {"ant", "bee", "dog"};
  const std::string path = (dir_ / "other_classes.safetensors").string();
  write_checkpoint(path, other);
  expect_clean_failure(run_cli("eval --checkpoint " + path + " --data " + spec_),
                       {path, "[ant, bee, dog]", "[ant, bee, cat]"});
  train::CheckpointInfo more = info_for(spec_);
  more.options.num_classes = 4;
  more.class_names.push_back("dog");
  const std::string more_path = (dir_ / "four_classes.safetensors").string();
  write_checkpoint(more_path, more);
  expect_clean_failure(run_cli("eval --checkpoint " + more_path + " --data " + spec_),
                       {more_path, "4 classes", "got 3"});
}

TEST_F(CliEvalPredict, RefusesUnknownDataSpec) {
  expect_clean_failure(run_cli("eval --checkpoint " + checkpoint_ + " --data imagenet:/x"),
                       {"imagenet:/x", "folder:DIR"});
  expect_clean_failure(
      run_cli("eval --checkpoint " + checkpoint_ + " --data folder:" + (dir_ / "none").string()),
      {(dir_ / "none").string()});
}

TEST_F(CliEvalPredict, RefusesUnreadableImage) {
  const std::string text = (dir_ / "notes.png").string();
  std::ofstream(text) << "not an image";
  const std::string good = data_ + "/val/ant/img0.png";
  auto r = run_cli("predict --checkpoint " + checkpoint_ + " " + good + " " + text);
  expect_clean_failure(r, {text, "PNG or JPEG"});
  EXPECT_TRUE(r.out.empty()) << "no half report: " << r.out;
  const std::string missing = (dir_ / "missing.png").string();
  expect_clean_failure(run_cli("predict --checkpoint " + checkpoint_ + " " + missing), {missing});
  expect_clean_failure(run_cli("predict --checkpoint " + checkpoint_ + " " + good + " --top-k 4"),
                       {"--top-k", "3", "4"});
}

}  // namespace
}  // namespace resnet
