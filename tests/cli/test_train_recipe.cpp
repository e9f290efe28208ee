// `resnet train --recipe`: a preset fills the options left unset, the command line wins,
// and config.json records the recipe and the values that ran.

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_runner.h"

namespace resnet::testing {
namespace {

nlohmann::json read_config(const std::filesystem::path& dir) {
  std::ifstream in(dir / "config.json");
  std::stringstream s;
  s << in.rdbuf();
  return nlohmann::json::parse(s.str());
}

TEST(CliTrainRecipe, PresetFillsUnsetOptionsAndTheCommandLineWins) {
  const auto dir = make_temp_dir("recipe");
  // --epochs and --precision override the speedrun's; the rest comes from it.
  const CliResult r = run_cli(
      "train --recipe speedrun --data fake:1x12x12:3:40 --epochs 1 "
      "--precision f32 --batch 8 --out " +
      (dir / "run").string());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const nlohmann::json c = read_config(dir / "run");
  EXPECT_EQ(c.at("recipe"), "speedrun");
  EXPECT_EQ(c.at("epochs"), 1);
  EXPECT_EQ(c.at("batch"), 8);
  EXPECT_EQ(c.at("precision"), "f32");
  EXPECT_DOUBLE_EQ(c.at("lr").get<double>(), 0.2);  // the recipe's, not the default 0.1
  EXPECT_DOUBLE_EQ(c.at("label_smoothing").get<double>(), 0.1);
  EXPECT_EQ(c.at("test_flip"), true);  // a flag set by the recipe
  std::filesystem::remove_all(dir);
}

TEST(CliTrainRecipe, WithoutRecipeTheDefaultsHold) {
  const auto dir = make_temp_dir("norecipe");
  const CliResult r = run_cli("train --data fake:1x12x12:3:40 --epochs 1 --batch 8 --out " +
                              (dir / "run").string());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const nlohmann::json c = read_config(dir / "run");
  EXPECT_EQ(c.at("recipe"), "");
  EXPECT_DOUBLE_EQ(c.at("lr").get<double>(), 0.1);
  EXPECT_DOUBLE_EQ(c.at("label_smoothing").get<double>(), 0.0);
  std::filesystem::remove_all(dir);
}

TEST(CliTrainRecipe, UnknownRecipeIsRefusedInOneLine) {
  expect_clean_failure(run_cli("train --recipe fastest --epochs 1"),
                       {"--recipe", "fastest", "speedrun", "best"});
}

TEST(CliTrainRecipe, TestFlipIsRecordedAndEvaluates) {
  const auto dir = make_temp_dir("testflip");
  const CliResult r = run_cli(
      "train --data fake:1x12x12:3:40 --epochs 1 --batch 8 --test-flip "
      "--out " +
      (dir / "run").string());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(read_config(dir / "run").at("test_flip"), true);
  EXPECT_NE(r.out.find("best test accuracy"), std::string::npos) << r.out;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace resnet::testing
