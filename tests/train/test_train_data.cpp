// Training on a folder of images of mixed sizes without a val/ split: the resized-crop
// pipeline, the held-out split and its list, the bad-image list, the checkpoint's evaluation
// recipe, and an interrupted run resuming with the same weights.

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "resnet/backend/activation_ops.h"
#include "resnet/core/error.h"
#include "resnet/data/image_codec.h"
#include "resnet/io/safetensors.h"
#include "resnet/train/checkpoint_info.h"
#include "resnet/train/trainer.h"

namespace resnet {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class TrainPhotos : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("resnet_train_photos_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    // DIR/train/{a,b,c}/*.png, RGB, 5 per class, sizes 9x14 to 29x21; no val/.
    for (int label = 0; label < 3; ++label) {
      const fs::path d = root_ / "data" / "train" / std::string(1, char('a' + label));
      fs::create_directories(d);
      for (int n = 0; n < 5; ++n) {
        const data::ImageShape s{3, 9 + 5 * n, 14 + 2 * n + label};
        std::vector<uint8_t> px(static_cast<size_t>(s.numel()));
        for (size_t p = 0; p < px.size(); ++p)
          px[p] = static_cast<uint8_t>((label * 85 + (p % 7 == size_t(label)) * 120 + n) % 256);
        const std::string path = (d / ("img" + std::to_string(n) + ".png")).string();
        data::write_png(path, px.data(), s);
        if (label == 1 && n == 2) bad_ = path;
      }
    }
    // Its header stays readable, its pixels are cut off.
    const std::string bytes = slurp(bad_);
    std::ofstream(bad_, std::ios::binary | std::ios::trunc) << bytes.substr(0, 60);
  }
  void TearDown() override { fs::remove_all(root_); }

  train::TrainConfig config(const std::string& out) const {
    train::TrainConfig c;
    c.model = "resnet20";
    c.data = "folder:" + (root_ / "data").string();
    c.epochs = 2;
    c.batch = 3;
    c.lr = 0.05;
    c.schedule = "cosine";
    c.eval_batch = 4;
    c.out = (root_ / out).string();
    c.threads = 2;
    c.size = 12;
    c.val_split = 0.4;
    c.skip_bad_images = true;
    c.workers = 2;
    return c;
  }

  fs::path root_;
  std::string bad_;
};

TEST_F(TrainPhotos, HeldOutSplitBadImagesEvalRecipeAndExactResume) {
  const train::TrainResult full = train::train(config("full"), false);
  EXPECT_EQ(full.epochs_done, 2);
  const fs::path dir = root_ / "full";
  const std::string held = slurp(dir / "val_split.txt");
  EXPECT_EQ(std::count(held.begin(), held.end(), '\n'), 6);  // round(0.4 * 5) of each class
  const std::string bad = slurp(dir / "bad_images.txt");
  EXPECT_EQ(bad.rfind(bad_, 0), 0u) << bad;
  EXPECT_EQ(std::count(bad.begin(), bad.end(), '\n'), 1);
  const train::CheckpointInfo info =
      train::read_checkpoint_info((dir / "last.safetensors").string());
  EXPECT_EQ(info.input_height, 12);
  EXPECT_EQ(info.eval_resize, 14);  // 12 * 256 / 224, rounded
  EXPECT_EQ(train::eval_preprocessing(info).resize_shorter, 14);
  const std::string config_json = slurp(dir / "config.json");
  for (const char* key :
       {"\"size\": 12", "\"val_split\": 0.4", "\"skip_bad_images\": true", "\"workers\": 2",
        "\"reduced_decode\": true", "\"resize\": 0", "\"crop_scale\": 0.08"})
    EXPECT_NE(config_json.find(key), std::string::npos) << key;

  // Interrupted after 2 steps, resumed with another worker count: the same weights.
  train::TrainConfig c = config("split");
  c.max_steps = 2;
  EXPECT_TRUE(train::train(c, false).interrupted);
  c.max_steps = 0;
  c.workers = 1;  // this invocation's: the batches do not depend on it
  EXPECT_FALSE(train::train(c, true).interrupted);
  auto a = io::read_safetensors((dir / "last.safetensors").string());
  auto b = io::read_safetensors((root_ / "split" / "last.safetensors").string());
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    const Tensor& x = a.tensors[i].second;
    const Tensor& y = b.tensors[i].second;
    ASSERT_EQ(x.nbytes(), y.nbytes());
    EXPECT_EQ(std::memcmp(x.raw(), y.raw(), x.nbytes()), 0) << a.tensors[i].first;
  }
}

// Mixed precision: the run records the precision it trained in, keeps f32 checkpoints,
// trains other weights than f32 does (so bf16 really ran) and resumes exactly. Without
// AVX512_BF16 it trains f32 and records that.
TEST_F(TrainPhotos, Bf16RunRecordsItsPrecisionKeepsF32CheckpointsAndResumesExactly) {
  const bool native = backend::cpu_has_native_bf16();
  train::TrainConfig c = config("bf16");
  c.precision = "bf16";
  train::train(c, false);
  const fs::path dir = root_ / "bf16";
  const std::string config_json = slurp(dir / "config.json");
  const std::string recorded = native ? "\"precision\": \"bf16\"" : "\"precision\": \"f32\"";
  EXPECT_NE(config_json.find(recorded), std::string::npos) << config_json;
  train::TrainConfig f = config("f32");
  train::train(f, false);
  auto a = io::read_safetensors((dir / "last.safetensors").string());
  auto b = io::read_safetensors((root_ / "f32" / "last.safetensors").string());
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  bool differs = false;
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    EXPECT_EQ(a.tensors[i].second.dtype(), b.tensors[i].second.dtype()) << a.tensors[i].first;
    const Tensor& x = a.tensors[i].second;
    differs |= std::memcmp(x.raw(), b.tensors[i].second.raw(), x.nbytes()) != 0;
  }
  EXPECT_EQ(differs, native);
  c = config("bf16-resumed");
  c.precision = "bf16";
  c.max_steps = 2;
  EXPECT_TRUE(train::train(c, false).interrupted);
  c.max_steps = 0;
  EXPECT_FALSE(train::train(c, true).interrupted);
  auto r = io::read_safetensors((root_ / "bf16-resumed" / "last.safetensors").string());
  for (size_t i = 0; i < a.tensors.size(); ++i)
    EXPECT_EQ(std::memcmp(a.tensors[i].second.raw(), r.tensors[i].second.raw(),
                          a.tensors[i].second.nbytes()),
              0)
        << a.tensors[i].first;
}

TEST_F(TrainPhotos, WithoutSkippingTheBadFileStopsTheRunNamingIt) {
  train::TrainConfig c = config("strict");
  c.skip_bad_images = false;
  try {
    train::train(c, false);
    FAIL() << "expected the bad image to stop the run";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(bad_), std::string::npos) << e.what();
  }
  c = config("no-val");
  c.val_split = 0;
  try {
    train::train(c, false);
    FAIL() << "expected a missing val/ to be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--val-split"), std::string::npos) << e.what();
  }
  c = config("classes");
  c.model_options.num_classes = 5;
  try {
    train::train(c, false);
    FAIL() << "expected --num-classes 5 against 3 classes to be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--num-classes 5 does not match"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("3 classes"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace resnet
