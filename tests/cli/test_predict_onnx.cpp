// resnet predict on ONNX files: a classifier exported with its final Softmax prints the
// same probabilities as the one without it (the Softmax's output is not softmaxed again).

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "io/onnx_model_builder.h"
#include "support/deterministic_weights.h"
#include "support/state_dict_listing.h"

namespace resnet {
namespace {

using testing::OnnxBuilder;

// input [1, 3, H, W] -> global pool -> flatten -> Gemm to 4 classes [-> Softmax].
std::string write_classifier(const std::filesystem::path& path, bool softmax) {
  OnnxBuilder b(13, {1, 3, -1, -1});
  b.node("GlobalAveragePool", {"input"}, {"g"});
  b.node("Flatten", {"g"}, {"f"});
  b.initializer("w", testing::deterministic_tensor(3, "w", {4, 3}));
  b.initializer("b", testing::deterministic_tensor(3, "b", {4}));
  testing::set_int(b.node("Gemm", {"f", "w", "b"}, {softmax ? "logits" : "output"}), "transB", 1);
  if (softmax) b.node("Softmax", {"logits"}, {"output"});
  return b.save(path.string());
}

TEST(PredictOnnx, FinalSoftmaxIsNotAppliedTwice) {
  const auto dir = testing::make_temp_dir("predict_onnx");
  const std::string image = testing::interop_fixture("preprocess/landscape_rgb.png");
  auto probabilities = [&](bool softmax) {
    const std::string model = write_classifier(dir / (softmax ? "p.onnx" : "l.onnx"), softmax);
    const testing::CliResult r = testing::run_cli("predict --model " + model + " --json " + image);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return nlohmann::json::parse(r.out).at("predictions").at(0).at("top");
  };
  const nlohmann::json with = probabilities(true), without = probabilities(false);
  ASSERT_EQ(with.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(with[i].at("index"), without[i].at("index"));
    EXPECT_NEAR(with[i].at("probability").get<double>(), without[i].at("probability").get<double>(),
                1e-6);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace resnet
