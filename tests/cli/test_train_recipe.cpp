// `resnet train --recipe`: a preset fills the options left unset, the command line wins,
// and config.json records the recipe and the values that ran.

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_runner.h"

namespace resnet::testing {
namespace {

// One epoch of batch 8 on 40 fake 12x12 images with `args` added, into a fresh --out.
class CliTrainRecipe : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = make_temp_dir("recipe"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  CliResult train(const std::string& args) {
    return run_cli("train --data fake:1x12x12:3:40 --epochs 1 --batch 8 " + args + " --out " +
                   (dir_ / "run").string());
  }
  nlohmann::json config() const {
    std::ifstream in(dir_ / "run" / "config.json");
    std::stringstream s;
    s << in.rdbuf();
    return nlohmann::json::parse(s.str());
  }

  std::filesystem::path dir_;
};

TEST_F(CliTrainRecipe, PresetFillsUnsetOptionsAndTheCommandLineWins) {
  // --epochs, --batch and --precision override the speedrun's; the rest comes from it.
  const CliResult r = train("--recipe speedrun --precision f32");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const nlohmann::json c = config();
  EXPECT_EQ(c.at("recipe"), "speedrun");
  EXPECT_EQ(c.at("epochs"), 1);
  EXPECT_EQ(c.at("batch"), 8);
  EXPECT_EQ(c.at("precision"), "f32");
  EXPECT_DOUBLE_EQ(c.at("lr").get<double>(), 0.2);  // the recipe's, not the default 0.1
  EXPECT_DOUBLE_EQ(c.at("label_smoothing").get<double>(), 0.1);
  EXPECT_EQ(c.at("test_flip"), true);  // a flag set by the recipe
}

TEST_F(CliTrainRecipe, WithoutRecipeTheDefaultsHold) {
  const CliResult r = train("");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const nlohmann::json c = config();
  EXPECT_EQ(c.at("recipe"), "");
  EXPECT_DOUBLE_EQ(c.at("lr").get<double>(), 0.1);
  EXPECT_DOUBLE_EQ(c.at("label_smoothing").get<double>(), 0.0);
}

TEST_F(CliTrainRecipe, UnknownRecipeIsRefusedInOneLine) {
  expect_clean_failure(run_cli("train --recipe fastest --epochs 1"),
                       {"--recipe", "fastest", "speedrun", "best"});
}

TEST_F(CliTrainRecipe, TestFlipIsRecordedAndEvaluates) {
  const CliResult r = train("--test-flip");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(config().at("test_flip"), true);
  EXPECT_NE(r.out.find("best test accuracy"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace resnet::testing
