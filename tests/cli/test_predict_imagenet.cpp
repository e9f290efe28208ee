// resnet predict with a torchvision model: `--model resnet18 --weights W` on a PNG, with
// torchvision's ImageNet transform, against torchvision's own top 10 for the same weights
// and image (tests/fixtures/interop/predict_resnet18.json); class names from --labels; and
// the new options' bad input ending in one line on stderr and a non-zero exit.

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "resnet/io/checkpoint.h"
#include "resnet/io/safetensors.h"
#include "resnet/models/zoo.h"
#include "support/state_dict_listing.h"

namespace resnet {
namespace {

using testing::expect_clean_failure;
using testing::interop_fixture;
using testing::run_cli;
namespace fs = std::filesystem;

class PredictImagenet : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = testing::make_temp_dir("predict_imagenet");
    std::ifstream in(interop_fixture("predict_resnet18.json"));
    reference_ = nlohmann::json::parse(in);
    // torchvision's resnet18 state_dict, filled as the reference was.
    weights_ = (dir_ / "resnet18.safetensors").string();
    io::write_safetensors(weights_,
                          testing::listed_state_dict(testing::read_state_dict_listing("resnet18"),
                                                     reference_.at("seed").get<uint64_t>()));
    image_ = interop_fixture(reference_.at("image").get<std::string>());
    labels_ = (dir_ / "labels.txt").string();
    std::ofstream out(labels_);
    for (int i = 0; i < 1000; ++i) out << "class number " << i << "\n";
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static std::string model_args() { return "predict --model resnet18 --weights " + weights_ + " "; }

  static fs::path dir_;
  static nlohmann::json reference_;
  static std::string weights_, image_, labels_;
};
fs::path PredictImagenet::dir_;
nlohmann::json PredictImagenet::reference_;
std::string PredictImagenet::weights_, PredictImagenet::image_, PredictImagenet::labels_;

TEST_F(PredictImagenet, TopKMatchesTorchvision) {
  auto r = run_cli(model_args() + image_ + " --json --top-k 10");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("preprocess"), "imagenet") << "the default for a zoo model";
  EXPECT_EQ(j.at("model"), "resnet18");
  const auto& top = j.at("predictions").at(0).at("top");
  const auto& want = reference_.at("top");
  ASSERT_EQ(top.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    // The reference's neighbours differ by more than 1e-3, so the order is well defined.
    EXPECT_EQ(top[i].at("index"), want[i].at("index")) << "rank " << i;
    EXPECT_NEAR(top[i].at("probability").get<double>(), want[i].at("probability").get<double>(),
                1e-5)
        << "rank " << i;
    EXPECT_EQ(top[i].at("class"), std::to_string(want[i].at("index").get<int>()))
        << "without labels a class is named by its index";
  }
}

TEST_F(PredictImagenet, LabelsNameTheClasses) {
  auto r = run_cli(model_args() + image_ + " --labels " + labels_ + " --top-k 3");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string first =
      "class number " + std::to_string(reference_.at("top")[0].at("index").get<int>());
  EXPECT_NE(r.out.find(first), std::string::npos) << r.out;
  EXPECT_EQ(r.out.rfind(image_ + "\n", 0), 0u) << r.out;
}

TEST_F(PredictImagenet, ExplicitImagenetGrayscaleAndNone) {
  // A grayscale image goes through convert("RGB") first; `none` feeds the image as it is
  // (resnet18 pools any size), so it gives other numbers than `imagenet` does.
  const std::string gray = interop_fixture("preprocess/small_gray.png");
  auto imagenet = run_cli(model_args() + "--preprocess imagenet --json " + image_ + " " + gray);
  ASSERT_EQ(imagenet.exit_code, 0) << imagenet.err;
  auto none = run_cli(model_args() + "--preprocess none --json " + image_);
  ASSERT_EQ(none.exit_code, 0) << none.err;
  const auto a = nlohmann::json::parse(imagenet.out), b = nlohmann::json::parse(none.out);
  EXPECT_EQ(a.at("predictions").size(), 2u);
  EXPECT_EQ(b.at("preprocess"), "none");
  EXPECT_NE(a.at("predictions")[0].at("top")[0].at("probability"),
            b.at("predictions")[0].at("top")[0].at("probability"));
}

TEST_F(PredictImagenet, RefusesLabelsOfAnotherCount) {
  const std::string short_labels = (dir_ / "short.txt").string();
  {
    std::ofstream out(short_labels);
    for (int i = 0; i < 10; ++i) out << "c" << i << "\n";
  }
  auto r = run_cli(model_args() + image_ + " --labels " + short_labels);
  expect_clean_failure(r, {short_labels, "expected 1000", "got 10"});
  EXPECT_TRUE(r.out.empty());
  expect_clean_failure(run_cli(model_args() + image_ + " --labels " + (dir_ / "no.txt").string()),
                       {"no.txt"});
}

TEST_F(PredictImagenet, RefusesBadModelArguments) {
  expect_clean_failure(run_cli("predict --model resnet18 " + image_), {"--weights", "resnet18"});
  expect_clean_failure(run_cli("predict " + image_), {"--checkpoint", "--model", "neither"});
  expect_clean_failure(run_cli("predict --checkpoint x.safetensors --model resnet18 " + image_),
                       {"--checkpoint", "--model", "both"});
  expect_clean_failure(run_cli(model_args() + "--preprocess checkpoint " + image_),
                       {"--preprocess checkpoint", "resnet18", "imagenet"});
  expect_clean_failure(run_cli(model_args() + "--preprocess resize " + image_), {"--preprocess"});
  expect_clean_failure(run_cli("predict --model resnet50 --weights " + weights_ + " " + image_),
                       {weights_, "resnet50", "missing"});
}

TEST_F(PredictImagenet, RefusesImagenetForOtherChannelCounts) {
  models::ModelOptions gray;
  gray.in_channels = 1;
  const std::string w = (dir_ / "resnet20_gray.safetensors").string();
  io::save_state_dict(*models::build("resnet20", gray), w);
  const std::string args = "predict --model resnet20 --in-channels 1 --weights " + w + " " + image_;
  expect_clean_failure(run_cli(args), {"--preprocess imagenet", "3 input channels", "1", "none"});
  auto r = run_cli(args + " --preprocess none --top-k 2");
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

}  // namespace
}  // namespace resnet
