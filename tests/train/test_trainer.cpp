// The training loop end to end on a tiny image-folder dataset the test writes: outputs,
// exact resume after an interruption, divergence and bad input.

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "resnet/core/error.h"
#include "resnet/data/dataset.h"
#include "resnet/data/image_codec.h"
#include "resnet/io/safetensors.h"
#include "resnet/train/trainer.h"
#include "train/train_test_util.h"

namespace resnet {
namespace {

namespace fs = std::filesystem;

// DIR/{train,val}/{a,b,c}/*.png, 8x8 gray, a pattern per class so the net can learn.
std::string make_dataset(const fs::path& dir) {
  for (const char* split : {"train", "val"}) {
    for (int label = 0; label < 3; ++label) {
      fs::path d = dir / split / std::string(1, static_cast<char>('a' + label));
      fs::create_directories(d);
      for (int n = 0; n < (std::string(split) == "train" ? 6 : 2); ++n) {
        std::vector<uint8_t> px(64);
        for (int p = 0; p < 64; ++p)
          px[p] = static_cast<uint8_t>((label * 85 + (p % 8 == label) * 120 + n * 5) % 256);
        data::write_png((d / (std::to_string(n) + ".png")).string(), px.data(),
                        data::ImageShape{1, 8, 8});
      }
    }
  }
  return "folder:" + dir.string();
}

class Trainer : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("resnet_trainer_test_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    spec_ = make_dataset(root_ / "data");
  }
  void TearDown() override { fs::remove_all(root_); }
  train::TrainConfig config(const std::string& out) const {
    train::TrainConfig c;
    c.model = "resnet20";
    c.data = spec_;
    c.epochs = 2;
    c.batch = 4;
    c.lr = 0.05;
    c.schedule = "cosine";
    c.eval_batch = 4;
    c.out = (root_ / out).string();
    c.threads = 2;
    return c;
  }
  fs::path root_;
  std::string spec_;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST_F(Trainer, WritesEverythingAnInterruptedRunResumesExactly) {
  train::TrainResult full = train::train(config("full"), false);
  EXPECT_EQ(full.epochs_done, 2);
  EXPECT_FALSE(full.interrupted);
  const fs::path dir = root_ / "full";
  for (const char* f : {"config.json", "metrics.csv", "last.safetensors", "last.state.safetensors",
                        "best.safetensors", "curves.svg", "steps.csv"})
    EXPECT_TRUE(fs::exists(dir / f)) << f;
  const std::string metrics = slurp(dir / "metrics.csv");
  EXPECT_EQ(metrics.substr(0, metrics.find('\n')),
            "epoch,train_loss,train_acc,test_loss,test_acc,lr,seconds");
  EXPECT_EQ(std::count(metrics.begin(), metrics.end(), '\n'), 3);  // header + 2 epochs

  // Interrupted after 3 steps (of 5 per epoch), then resumed twice: same final weights.
  train::TrainConfig c = config("split");
  c.max_steps = 3;
  EXPECT_TRUE(train::train(c, false).interrupted);
  EXPECT_TRUE(train::train(c, true).interrupted);  // 3 more: into epoch 2
  c.max_steps = 0;
  train::TrainResult rest = train::train(c, true);
  EXPECT_FALSE(rest.interrupted);
  auto a = io::read_safetensors((dir / "last.safetensors").string());
  auto b = io::read_safetensors((root_ / "split" / "last.safetensors").string());
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    const Tensor& x = a.tensors[i].second;
    const Tensor& y = b.tensors[i].second;
    ASSERT_EQ(x.nbytes(), y.nbytes());
    EXPECT_EQ(std::memcmp(x.raw(), y.raw(), x.nbytes()), 0)
        << a.tensors[i].first << " differs after resume";
  }
  EXPECT_EQ(slurp(dir / "metrics.csv").size() > 0, true);
  EXPECT_EQ(a.metadata.at("model"), "resnet20");
  EXPECT_EQ(a.metadata.at("in_channels"), "1");
  EXPECT_EQ(a.metadata.at("num_classes"), "3");
}

TEST_F(Trainer, AStopRequestedDuringSetUpEndsBeforeTheFirstStep) {
  // As a Ctrl-C while the data is opened: honoured before any step, nothing saved, and the
  // request consumed, so the next run trains.
  train::stop_requested() = true;
  const train::TrainResult r = train::train(config("setup"), false);
  EXPECT_TRUE(r.interrupted);
  EXPECT_FALSE(train::stop_requested());
  EXPECT_FALSE(fs::exists(root_ / "setup" / "last.safetensors"));
  train::TrainConfig c = config("setup");
  c.max_steps = 1;
  EXPECT_TRUE(train::train(c, true).interrupted);  // from config.json: nothing saved yet
  EXPECT_TRUE(fs::exists(root_ / "setup" / "last.safetensors"));
}

TEST_F(Trainer, AnEditedConfigIsRefusedInOneLine) {
  train::TrainConfig c = config("edited");
  c.max_steps = 1;
  train::train(c, false);
  const fs::path path = root_ / "edited" / "config.json";
  std::string text = slurp(path);
  const std::string key = "\"eval_batch\": 4";
  ASSERT_NE(text.find(key), std::string::npos) << text;
  text.replace(text.find(key), key.size(), "\"eval_batch\": -4");
  std::ofstream(path) << text;
  EXPECT_TRAIN_ERROR(train::train(c, true), "config.json",
                     "'eval_batch': expected a positive number");
}

TEST_F(Trainer, DivergenceStopsNamingTheStep) {
  train::TrainConfig c = config("nan");
  c.lr = 1e30;
  c.schedule = "constant";
  try {
    train::train(c, false);
    FAIL() << "expected divergence";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("step"), std::string::npos) << e.what();
  }
}

TEST_F(Trainer, BadInputIsRefused) {
  train::TrainConfig c = config("bad");
  c.data = "folder:" + (root_ / "missing").string();
  EXPECT_THROW(train::train(c, false), Error);
  c = config("never-ran");
  EXPECT_THROW(train::train(c, true), Error);  // nothing to resume
  c = config("bad-model");
  c.model = "resnet9";
  EXPECT_THROW(train::train(c, false), Error);
}

}  // namespace
}  // namespace resnet
