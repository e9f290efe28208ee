// `resnet train` fine-tuning end to end on a tiny image-folder dataset the test writes:
// --init from a state_dict of another class count (the head re-initialised), --freeze
// (frozen tensors bit-identical in the checkpoints), --lr-backbone, --ema (extra metrics
// columns and checkpoints), --mixup with --cutmix, the origin in the metadata, an exact
// resume with all of them, and an old config.json without the new keys.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "io/io_test_util.h"
#include "resnet/core/error.h"
#include "resnet/data/dataset.h"
#include "resnet/data/image_codec.h"
#include "resnet/io/checkpoint.h"
#include "resnet/io/file_digest.h"
#include "resnet/io/safetensors.h"
#include "resnet/models/zoo.h"
#include "resnet/nn/init.h"
#include "resnet/train/trainer.h"
#include "train/train_test_util.h"

namespace resnet {
namespace {

namespace fs = std::filesystem;

// DIR/{train,val}/{a,b,c}/*.png, 8x8 gray, a pattern per class.
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

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class FineTuneRun : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("resnet_finetune_test_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    spec_ = make_dataset(root_ / "data");
    // "Pretrained" weights: a 1-channel resnet20 with 10 classes, as a bare state_dict.
    nn::init::manual_seed(99);
    models::ModelOptions o;
    o.in_channels = 1;
    o.num_classes = 10;
    pretrained_ = models::build("resnet20", o);
    init_ = (root_ / "pretrained.safetensors").string();
    io::save_state_dict(*pretrained_, init_);
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
    c.init = init_;
    c.freeze = "conv1,bn1,layer1";
    c.lr_backbone = 0.1;
    c.ema = 0.9;
    c.mixup = 0.2;
    c.cutmix = 1.0;
    return c;
  }
  fs::path root_;
  std::string spec_, init_;
  nn::ModulePtr pretrained_;
};

void expect_same_tensors(const std::string& a_path, const std::string& b_path) {
  auto a = io::read_safetensors(a_path);
  auto b = io::read_safetensors(b_path);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    const Tensor& x = a.tensors[i].second;
    const Tensor& y = b.tensors[i].second;
    ASSERT_EQ(x.nbytes(), y.nbytes());
    EXPECT_EQ(std::memcmp(x.raw(), y.raw(), x.nbytes()), 0)
        << a.tensors[i].first << " differs between " << a_path << " and " << b_path;
  }
}

TEST_F(FineTuneRun, StartsFromInitKeepsFrozenTensorsAndResumesExactly) {
  train::TrainResult full = train::train(config("full"), false);
  EXPECT_EQ(full.epochs_done, 2);
  const fs::path dir = root_ / "full";
  for (const char* f : {"ema.safetensors", "best_ema.safetensors", "last.safetensors"})
    EXPECT_TRUE(fs::exists(dir / f)) << f;
  const std::string metrics = slurp(dir / "metrics.csv");
  EXPECT_EQ(metrics.substr(0, metrics.find('\n')),
            "epoch,train_loss,train_acc,test_loss,test_acc,lr,seconds,ema_test_loss,ema_test_acc");

  auto last = io::read_safetensors((dir / "last.safetensors").string());
  EXPECT_EQ(last.metadata.at("init"), "pretrained.safetensors");
  EXPECT_EQ(last.metadata.at("init_sha256"), io::sha256_file(init_));
  EXPECT_EQ(last.metadata.at("num_classes"), "3");
  // Frozen tensors (BN buffers included) are the pretrained ones bit for bit; the rest
  // of the backbone moved; the new head has 3 classes.
  for (auto& [name, t] : pretrained_->state_dict()) {
    const Tensor* got = last.find(name);
    ASSERT_NE(got, nullptr) << name;
    if (name.rfind("fc.", 0) == 0) {
      EXPECT_EQ(got->dim(0), 3) << name;
      continue;
    }
    const bool frozen =
        name.rfind("conv1.", 0) == 0 || name.rfind("bn1.", 0) == 0 || name.rfind("layer1.", 0) == 0;
    const bool same = std::memcmp(got->raw(), t->raw(), t->nbytes()) == 0;
    if (frozen) {
      EXPECT_TRUE(same) << name;
    }
    if (name == "layer3.2.conv2.weight") {
      EXPECT_FALSE(same) << name;
    }
  }

  // Interrupted twice, resumed: the same weights, average and metrics.
  train::TrainConfig c = config("split");
  c.max_steps = 3;
  EXPECT_TRUE(train::train(c, false).interrupted);
  EXPECT_TRUE(train::train(c, true).interrupted);
  c.max_steps = 0;
  EXPECT_FALSE(train::train(c, true).interrupted);
  const fs::path split = root_ / "split";
  expect_same_tensors((dir / "last.safetensors").string(), (split / "last.safetensors").string());
  expect_same_tensors((dir / "ema.safetensors").string(), (split / "ema.safetensors").string());
  auto drop_seconds = [](const std::string& csv) {
    // Compare every column but seconds.
    std::string out;
    std::stringstream s(csv);
    for (std::string line; std::getline(s, line);) {
      std::stringstream l(line);
      std::string cell;
      int col = 0;
      while (std::getline(l, cell, ','))
        if (col++ != 6) out += cell + ",";
      out += "\n";
    }
    return out;
  };
  EXPECT_EQ(drop_seconds(slurp(dir / "metrics.csv")), drop_seconds(slurp(split / "metrics.csv")));
}

TEST_F(FineTuneRun, OldConfigWithoutTheNewKeysResumes) {
  train::TrainConfig c = config("old");
  c.init = c.freeze = "";
  c.lr_backbone = 1.0;
  c.ema = c.mixup = c.cutmix = 0.0;
  c.max_steps = 2;
  EXPECT_TRUE(train::train(c, false).interrupted);
  // Rewrite config.json as an older version wrote it.
  const fs::path path = root_ / "old" / "config.json";
  auto j = nlohmann::ordered_json::parse(slurp(path));
  for (const char* key : {"init", "freeze", "lr_backbone", "ema", "mixup", "cutmix"}) j.erase(key);
  std::ofstream(path) << j.dump(2) << "\n";
  c.max_steps = 0;
  EXPECT_EQ(train::train(c, true).epochs_done, 2);
  const std::string metrics = slurp(root_ / "old" / "metrics.csv");
  EXPECT_EQ(metrics.substr(0, metrics.find('\n')),
            "epoch,train_loss,train_acc,test_loss,test_acc,lr,seconds");
}

TEST_F(FineTuneRun, RefusesWhatCannotBeFineTuned) {
  train::TrainConfig c = config("bad");
  c.freeze = "layer1,layer7";
  EXPECT_TRAIN_ERROR(train::train(c, false), "'layer7' is no module");
  c = config("all");
  c.freeze = "backbone,fc";
  EXPECT_TRAIN_ERROR(train::train(c, false), "nothing would train");
  // Weights of another architecture.
  c = config("other");
  c.model = "resnet32";
  EXPECT_TRAIN_ERROR(train::train(c, false), "pretrained.safetensors",
                     "expected the state_dict of resnet32");
}

}  // namespace
}  // namespace resnet
