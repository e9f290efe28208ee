// bench's JSON contract end to end: inference in every precision, and a training step.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "inference_cli_util.h"
#include "resnet/data/image_codec.h"
#include "resnet/data/preprocess.h"
#include "resnet/infer/calibration.h"
#include "resnet/infer/compiled_model.h"
#include "resnet/infer/lower_module.h"
#include "resnet/io/checkpoint.h"
#include "resnet/io/npy.h"
#include "resnet/io/safetensors.h"
#include "resnet/models/zoo.h"
#include "resnet/train/checkpoint_info.h"
#include "support/deterministic_weights.h"

namespace resnet {
namespace {

using testing::expect_clean_failure;
using testing::kTolerance;
using testing::macs_per_image;
using testing::one_json_line;
using testing::run_cli;
using testing::softmax;
namespace fs = std::filesystem;

class BenchJson : public ::testing::TestWithParam<std::string> {};

TEST_P(BenchJson, InferOneLineWithTheContractFields) {
  const std::string dtype = GetParam();
  auto r = run_cli(
      "bench --model resnet20 --in-channels 1 --size 28 --batch 2 --iters 2 --warmup 0 --json "
      "--dtype " +
      dtype);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = one_json_line(r);
  EXPECT_EQ(j.at("model"), "resnet20");
  EXPECT_EQ(j.at("mode"), "infer");
  EXPECT_EQ(j.at("dtype"), dtype);
  EXPECT_EQ(j.at("batch"), 2);
  EXPECT_EQ(j.at("in_channels"), 1);
  EXPECT_EQ(j.at("size"), 28);
  const double ips = j.at("images_per_s").get<double>();
  const double p50 = j.at("latency_ms_p50").get<double>();
  const double gflops = j.at("gflops").get<double>();
  EXPECT_GT(ips, 0);
  EXPECT_GT(p50, 0);
  EXPECT_GE(j.at("latency_ms_p90").get<double>(), p50);
  EXPECT_NEAR(ips, 2 * 1000.0 / p50, 1e-9 * ips);
  const double gmacs = j.at("gmacs_per_image").get<double>();
  EXPECT_NEAR(gmacs, macs_per_image("resnet20", 1, 28) * 1e-9, 1e-12);
  EXPECT_NEAR(gflops, 2 * gmacs * ips, 1e-9 * gflops);
  EXPECT_GT(j.at("fp32_fma_peak_gflops").get<double>(), 0);
  EXPECT_NEAR(j.at("fraction_of_fp32_peak").get<double>(),
              gflops / j.at("fp32_fma_peak_gflops").get<double>(), 1e-12);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, BenchJson, ::testing::Values("f32", "bf16", "int8"));

TEST(BenchTrain, TimesAFullStep) {
  auto r = run_cli(
      "bench --model resnet20 --in-channels 1 --size 28 --batch 2 --iters 2 --warmup 0 --json "
      "--mode train");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = one_json_line(r);
  EXPECT_EQ(j.at("mode"), "train");
  EXPECT_EQ(j.at("dtype"), "f32");
  EXPECT_GT(j.at("images_per_s").get<double>(), 0);
  EXPECT_GT(j.at("latency_ms_p50").get<double>(), 0);
  EXPECT_GT(j.at("gflops").get<double>(), 0);
  EXPECT_GT(j.at("fraction_of_fp32_peak").get<double>(), 0);
  // The whole process's high-water mark: at least the binary and oneDNN's kernels.
  EXPECT_GT(j.at("peak_rss_bytes").get<int64_t>(), int64_t{4} << 20);
  EXPECT_LT(j.at("peak_rss_bytes").get<int64_t>(), int64_t{8} << 30);
  // Forward, backward-data and backward-weights: three times the forward work.
  EXPECT_NEAR(j.at("gmacs_per_image").get<double>(), 3 * macs_per_image("resnet20", 1, 28) * 1e-9,
              1e-12);
}

// Training runs in f32 or bf16 mixed precision (int8 is inference only).
TEST(BenchTrain, RefusesInt8AndRunsBf16) {
  const std::string base =
      "bench --model resnet20 --in-channels 1 --size 28 --batch 2 --iters 1 --warmup 0 "
      "--mode train --json --dtype ";
  auto r = run_cli(base + "int8");
  expect_clean_failure(r, {"--dtype int8", "f32 or bf16"});
  EXPECT_TRUE(r.out.empty()) << r.out;
  r = run_cli(base + "bf16");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"dtype\":\"bf16\""), std::string::npos) << r.out;
}

}  // namespace
}  // namespace resnet
