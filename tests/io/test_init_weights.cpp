// Loading pretrained weights for fine-tuning: a state_dict with another classifier loads
// everything but the head, which keeps its fresh values; any other mismatch is refused as
// strict loading refuses it. SHA-256 of a file; the checkpoint's init metadata.

#include <gtest/gtest.h>

#include <cstring>

#include "io/io_test_util.h"
#include "resnet/io/checkpoint.h"
#include "resnet/io/file_digest.h"
#include "resnet/io/safetensors.h"
#include "resnet/models/zoo.h"
#include "resnet/nn/init.h"
#include "resnet/train/checkpoint_info.h"
#include "train/train_test_util.h"

namespace resnet {
namespace {

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

nn::ModulePtr build(const std::string& name, int64_t classes, uint64_t seed) {
  nn::init::manual_seed(seed);
  models::ModelOptions o;
  o.num_classes = classes;
  return models::build(name, o);
}

TEST(InitWeights, NewHeadKeepsItsInitialisationAndEverythingElseLoads) {
  testing::TempDir dir;
  auto pretrained = build("resnet18", 1000, 1);
  // Reversed key order: the loader matches by name.
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (auto& [name, t] : pretrained->state_dict()) tensors.emplace(tensors.begin(), name, *t);
  io::write_safetensors(dir.file("w.safetensors"), tensors);

  auto fresh = build("resnet18", 7, 2);
  Tensor fc_bias = fresh->state_dict().back().second->clone();  // the last key
  io::LoadReport r =
      io::load_state_dict(*fresh, dir.file("w.safetensors"), io::LoadOptions{"resnet18", "fc"});
  EXPECT_EQ(r.reinitialised, (std::vector<std::string>{"fc.weight", "fc.bias"}));
  EXPECT_EQ(r.loaded, static_cast<int64_t>(pretrained->state_dict().size()) - 2);
  auto want = pretrained->state_dict();
  auto got = fresh->state_dict();
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i].first.rfind("fc.", 0) == 0) continue;
    EXPECT_TRUE(same_bytes(*got[i].second, *want[i].second)) << got[i].first;
  }
  EXPECT_TRUE(same_bytes(*got.back().second, fc_bias));
  // The new head is PyTorch's nn.Linear default: U(-1/sqrt(512), 1/sqrt(512)).
  const float bound = 1.f / std::sqrt(512.f);
  for (float v : std::as_const(*got[got.size() - 2].second).values()) {
    EXPECT_LE(std::abs(v), bound);
  }

  // The same class count: the head loads too.
  auto same = build("resnet18", 1000, 3);
  r = io::load_state_dict(*same, dir.file("w.safetensors"), io::LoadOptions{"resnet18", "fc"});
  EXPECT_TRUE(r.reinitialised.empty());
  EXPECT_EQ(r.loaded, static_cast<int64_t>(want.size()));
}

TEST(InitWeights, OtherMismatchesAreRefusedAsStrictLoadingRefusesThem) {
  testing::TempDir dir;
  auto pretrained = build("resnet18", 1000, 1);
  io::save_state_dict(*pretrained, dir.file("r18.safetensors"));
  auto r34 = build("resnet34", 10, 1);
  EXPECT_IO_ERROR(
      io::load_state_dict(*r34, dir.file("r18.safetensors"), io::LoadOptions{"resnet34", "fc"}),
      "r18.safetensors", "expected the state_dict of resnet34");
  // A missing head tensor is still missing.
  std::vector<std::pair<std::string, Tensor>> no_bias;
  for (auto& [name, t] : pretrained->state_dict())
    if (name != "fc.bias") no_bias.emplace_back(name, *t);
  io::write_safetensors(dir.file("nobias.safetensors"), no_bias);
  auto r18 = build("resnet18", 10, 1);
  EXPECT_IO_ERROR(
      io::load_state_dict(*r18, dir.file("nobias.safetensors"), io::LoadOptions{"resnet18", "fc"}),
      "missing tensor 'fc.bias'");
  // A backbone tensor of another shape (resnet18 with 4 input channels) is refused.
  models::ModelOptions four;
  four.in_channels = 4;
  auto r18_4 = models::build("resnet18", four);
  EXPECT_IO_ERROR(
      io::load_state_dict(*r18_4, dir.file("r18.safetensors"), io::LoadOptions{"resnet18", "fc"}),
      "conv1.weight", "expected shape [64, 4, 7, 7]");
}

TEST(InitWeights, Sha256OfAFile) {
  testing::TempDir dir;
  testing::write_bytes(dir.file("abc"), "abc");
  EXPECT_EQ(io::sha256_file(dir.file("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  testing::write_bytes(dir.file("empty"), "");
  EXPECT_EQ(io::sha256_file(dir.file("empty")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_IO_ERROR(io::sha256_file(dir.file("none")), "none", "cannot read");
}

TEST(InitWeights, CheckpointInfoRecordsTheOriginOnlyWhenThereIsOne) {
  train::CheckpointInfo info;
  info.model = "resnet20";
  info.options = models::resolve_options("resnet20", {});
  info.input_height = info.input_width = 28;
  info.options.in_channels = 1;
  info.mean = {0.5f};
  info.std = {0.25f};
  info.class_names = std::vector<std::string>(10, "c");
  info.dataset = "fashion-mnist";
  auto plain = info.to_metadata();
  EXPECT_EQ(plain.count("init"), 0u);
  EXPECT_EQ(train::CheckpointInfo::from_metadata(plain, "x").init, "");
  info.init = "resnet18.safetensors";
  info.init_sha256 = std::string(64, 'a');
  auto back = train::CheckpointInfo::from_metadata(info.to_metadata(), "x");
  EXPECT_EQ(back.init, info.init);
  EXPECT_EQ(back.init_sha256, info.init_sha256);
}

}  // namespace
}  // namespace resnet
