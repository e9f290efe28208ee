// LR schedules: PyTorch's schedulers' lr sequences (tools/gen_train_fixtures.py), both
// through the factories and through the spec parser, golden values and bad arguments.

#include "resnet/train/lr_schedule.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "resnet/train/lr_schedule_spec.h"
#include "train/train_test_util.h"

namespace resnet {
namespace {

using namespace train;

const nlohmann::json& lr_case(const std::string& name) {
  static const nlohmann::json j = testing::read_train_json("lr_schedules.json");
  for (const auto& c : j.at("cases")) {
    if (c.at("name") == name) return c;
  }
  throw std::runtime_error("lr_schedules.json lacks case " + name);
}

std::vector<std::string> lr_case_names() {
  std::vector<std::string> names;
  const nlohmann::json j = testing::read_train_json("lr_schedules.json");
  for (const auto& c : j.at("cases")) {
    names.push_back(c.at("name").get<std::string>());
  }
  return names;
}

// Within 1e-9 of PyTorch's value, relative (PyTorch mostly uses recursive forms, we use
// closed forms; the floor admits an exact 0 against a value at rounding level).
void expect_sequence(const LrSchedule& schedule, const nlohmann::json& c) {
  const auto lrs = c.at("lrs").get<std::vector<double>>();
  ASSERT_EQ(lrs.size(), 50u);
  int bad = 0;
  for (size_t s = 0; s < lrs.size(); ++s) {
    const double got = schedule.lr_at(static_cast<int64_t>(s));
    if (!(std::fabs(got - lrs[s]) <= 1e-9 * std::fabs(lrs[s]) + 1e-15)) {
      if (++bad <= 5) {
        ADD_FAILURE() << c.at("name").get<std::string>() << " (" << schedule.describe() << ") step "
                      << s << ": got " << got << ", PyTorch " << c.at("torch").get<std::string>()
                      << " gives " << lrs[s];
      }
    }
  }
}

class LrScheduleVsTorch : public ::testing::TestWithParam<std::string> {};

TEST_P(LrScheduleVsTorch, SpecMatchesTorchSequence) {
  const nlohmann::json& c = lr_case(GetParam());
  const auto schedule =
      parse_lr_schedule(c.at("spec").get<std::string>(), c.at("base_lr").get<double>(),
                        c.at("total_steps").get<int64_t>(), c.at("warmup_steps").get<int64_t>(),
                        c.at("warmup_start_factor").get<double>());
  expect_sequence(*schedule, c);
}

INSTANTIATE_TEST_SUITE_P(LrTorchCases, LrScheduleVsTorch, ::testing::ValuesIn(lr_case_names()),
                         [](const auto& info) { return info.param; });

TEST(LrScheduleFactories, MatchTorch) {
  expect_sequence(*make_multistep_lr(0.1, {40, 10, 25}, 0.5), lr_case("multistep"));
  expect_sequence(*make_cosine_lr(0.2, 30, 0.001), lr_case("cosine_eta_min_past_end"));
  expect_sequence(*make_onecycle_lr(0.1, 50), lr_case("onecycle"));
  expect_sequence(*make_onecycle_lr(0.5, 50, {0.25, 10.0, 100.0}), lr_case("onecycle_options"));
  expect_sequence(*make_warmup_lr(make_cosine_lr(0.1, 45), 5, 0.25), lr_case("warmup_cosine"));
  expect_sequence(*make_warmup_lr(make_onecycle_lr(0.1, 45), 5, 0.1), lr_case("warmup_onecycle"));
}

// A wrong schedule must not pass: cosine over 50 steps is not cosine over 49.
TEST(LrScheduleFactories, ComparisonCatchesOffByOne) {
  const auto wrong = make_cosine_lr(0.1, 49);
  const auto lrs = lr_case("cosine").at("lrs").get<std::vector<double>>();
  EXPECT_GT(std::fabs(wrong->lr_at(25) - lrs[25]), 1e-9 * lrs[25]);
}

// Hand values: multistep 1 * 0.5^(milestones passed); cosine (1 + cos(pi t / 2)) / 2 at
// t = 0, 1, 2 is 1, 1/2, 0; one-cycle starts at max/25, peaks at max at step
// pct_start * total - 1 = 2 and ends at max / 25 / 1e4 at total - 1; warm-up from a third.
TEST(LrSchedule, GoldenValues) {
  const auto m = make_multistep_lr(1.0, {2, 4, 4}, 0.5);
  const std::vector<double> expected = {1, 1, 0.5, 0.5, 0.125, 0.125};
  for (int64_t s = 0; s < 6; ++s) EXPECT_DOUBLE_EQ(m->lr_at(s), expected[s]) << s;

  const auto c = make_cosine_lr(1.0, 2);
  EXPECT_DOUBLE_EQ(c->lr_at(0), 1.0);
  EXPECT_NEAR(c->lr_at(1), 0.5, 1e-15);
  EXPECT_NEAR(c->lr_at(2), 0.0, 1e-15);

  const auto o = make_onecycle_lr(2.5, 10);
  EXPECT_NEAR(o->lr_at(0), 0.1, 1e-15);
  EXPECT_DOUBLE_EQ(o->lr_at(2), 2.5);
  EXPECT_NEAR(o->lr_at(9), 1e-5, 1e-18);

  const auto w = make_warmup_lr(make_constant_lr(0.3), 3);
  EXPECT_DOUBLE_EQ(w->lr_at(0), 0.1);
  EXPECT_DOUBLE_EQ(w->lr_at(1), 0.3 * (1.0 / 3 + (2.0 / 3) / 3));
  EXPECT_DOUBLE_EQ(w->lr_at(3), 0.3);
  EXPECT_DOUBLE_EQ(w->lr_at(1000), 0.3);
}

// One-cycle phases PyTorch divides by zero in (a phase of length 0), where the phase's end
// value is used. total 10, pct_start 0.1: phase 1 is [0, 0.1 * 10 - 1 = 0], so step 0 is
// max_lr. pct_start 1: phase 2 is [9, 9], so step 10 (allowed, as in PyTorch) is the final
// lr 1 / 25 / 1e4.
TEST(LrSchedule, OneCycleEmptyPhaseTakesItsEndValue) {
  const auto o = make_onecycle_lr(1.0, 10, {0.1, 25.0, 1e4});
  EXPECT_DOUBLE_EQ(o->lr_at(0), 1.0);
  EXPECT_LT(o->lr_at(1), 1.0);
  const auto up = make_onecycle_lr(1.0, 10, {1.0, 25.0, 1e4});
  EXPECT_DOUBLE_EQ(up->lr_at(9), 1.0);
  EXPECT_DOUBLE_EQ(up->lr_at(10), 1.0 / 25.0 / 1e4);
}

TEST(LrSchedule, PureFunctionOfStep) {
  const auto o = make_warmup_lr(make_onecycle_lr(0.1, 45), 5, 0.1);
  const double late = o->lr_at(30);
  o->lr_at(3);
  EXPECT_EQ(o->lr_at(30), late);
}

TEST(LrSchedule, RejectsBadArguments) {
  EXPECT_TRAIN_ERROR(make_constant_lr(0.1)->lr_at(-1), "step >= 0", "-1");
  EXPECT_TRAIN_ERROR(make_onecycle_lr(0.1, 50)->lr_at(51), "onecycle", "step 51", "total_steps 50");
  EXPECT_TRAIN_ERROR(make_cosine_lr(0.1, 0), "total_steps > 0", "got 0");
  EXPECT_TRAIN_ERROR(make_multistep_lr(0.1, {-3}), "milestones >= 0", "-3");
  EXPECT_TRAIN_ERROR(make_multistep_lr(0.1, {3}, 0.0), "gamma");
  EXPECT_TRAIN_ERROR(make_constant_lr(-0.1), "lr >= 0");
  EXPECT_TRAIN_ERROR(make_onecycle_lr(0.1, 10, {1.5, 25.0, 1e4}), "pct_start", "1.5");
  EXPECT_TRAIN_ERROR(make_warmup_lr(make_constant_lr(0.1), 5, 0.0), "start_factor");
  EXPECT_TRAIN_ERROR(make_warmup_lr(make_constant_lr(0.1), -1), "warmup steps >= 0");
}

}  // namespace
}  // namespace resnet
