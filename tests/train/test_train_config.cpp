// config.json as --resume reads it back (TrainConfig::from_json) and the int8 calibration a
// quantized checkpoint carries: numbers of the wrong kind or beyond their type's range are
// refused in one line, never converted with undefined results. The fixture in
// tests/fixtures/hostile/ is the input fuzz_resume found.

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "resnet/infer/calibration.h"
#include "resnet/train/trainer.h"
#include "train/train_test_util.h"

namespace resnet {
namespace {

std::string with_value(const std::string& key, const std::string& value) {
  std::string text = train::TrainConfig().to_json();
  const std::string field = "\"" + key + "\": ";
  const size_t at = text.find(field);
  EXPECT_NE(at, std::string::npos) << key;
  const size_t begin = at + field.size();
  const size_t end = text.find_first_of(",\n", begin);
  return text.replace(begin, end - begin, value);
}

TEST(TrainConfigJson, RoundTrips) {
  train::TrainConfig c;
  c.seed = 18446744073709551615u;
  c.save_every = 7;
  const train::TrainConfig back = train::TrainConfig::from_json(c.to_json(), "config.json");
  EXPECT_EQ(back.seed, c.seed);
  EXPECT_EQ(back.save_every, 7);
}

TEST(TrainConfigJson, NumbersOfTheWrongKindOrRangeAreRefused) {
  EXPECT_TRAIN_ERROR(train::TrainConfig::from_json(
                         with_value("crop_padding", "92233720368547758082"), "config.json"),
                     "config.json: 'crop_padding': expected an integer, got 9.22");
  EXPECT_TRAIN_ERROR(train::TrainConfig::from_json(with_value("epochs", "2.5"), "config.json"),
                     "'epochs': expected an integer, got 2.5");
  EXPECT_TRAIN_ERROR(train::TrainConfig::from_json(with_value("seed", "-1"), "config.json"),
                     "'seed': expected an integer in [0, 18446744073709551615], got -1");
  EXPECT_TRAIN_ERROR(train::TrainConfig::from_json(with_value("threads", "4294967296"), "c.json"),
                     "'threads': expected at most 2147483647, got 4294967296");
  EXPECT_TRAIN_ERROR(train::TrainConfig::from_json(with_value("workers", "1e400"), "c.json"),
                     "c.json");
}

TEST(TrainConfigJson, TheInputFuzzingFoundIsRefused) {
  std::ifstream in(std::string(RESNET_FIXTURE_DIR) +
                   "/hostile/resume_crop_padding_beyond_int64.bin");
  ASSERT_TRUE(in);
  std::stringstream bytes;
  bytes << in.rdbuf();
  const std::string input = bytes.str();
  const std::string config = input.substr(0, input.find("\n@@state@@\n"));
  EXPECT_TRAIN_ERROR(train::TrainConfig::from_json(config, "config.json"), "config.json",
                     "'crop_padding': expected an integer");
}

// An edited config.json of two million nested arrays: one line, no stack overflow.
TEST(TrainConfigJson, ADeeplyNestedDocumentIsRefusedInOneLine) {
  const std::string nested = std::string(2'000'000, '[') + std::string(2'000'000, ']');
  EXPECT_TRAIN_ERROR(train::TrainConfig::from_json("{\"model\": " + nested + "}", "config.json"),
                     "config.json: expected a training config");
  EXPECT_TRAIN_ERROR(train::TrainConfig::from_json(nested, "config.json"), "config.json");
}

TEST(CalibrationJson, NumbersBeyondTheirTypesAreRefused) {
  EXPECT_TRAIN_ERROR(infer::Calibration::from_json(R"({"images": 1e300, "max_abs": {}})", "q"),
                     "q: int8 calibration 'images': expected a non-negative integer");
  EXPECT_TRAIN_ERROR(infer::Calibration::from_json(R"({"images": -3, "max_abs": {}})", "q"),
                     "'images'");
  EXPECT_TRAIN_ERROR(
      infer::Calibration::from_json(R"({"images": 4, "max_abs": {"relu": 1e300}})", "q"),
      "q: calibration of 'relu' expected a finite non-negative range, found 1e+300");
  EXPECT_EQ(infer::Calibration::from_json(R"({"images": 4, "max_abs": {"relu": 2.5}})", "q")
                .max_abs.at("relu"),
            2.5f);
}

}  // namespace
}  // namespace resnet
