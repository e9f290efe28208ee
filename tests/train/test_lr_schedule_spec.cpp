// The spec grammar of lr_schedule_spec.h: what each form builds, and the errors.

#include "resnet/train/lr_schedule_spec.h"

#include <gtest/gtest.h>

#include "train/train_test_util.h"

namespace resnet {
namespace {

using train::parse_lr_schedule;

TEST(LrScheduleSpec, BuildsEachKindWithDefaults) {
  EXPECT_EQ(parse_lr_schedule("constant", 0.1, 0)->describe(), "constant(lr=0.1)");
  EXPECT_EQ(parse_lr_schedule("multistep:30,60", 0.1, 0)->describe(),
            "multistep(lr=0.1, milestones=[30, 60], gamma=0.1)");
  EXPECT_EQ(parse_lr_schedule("multistep:30,60:0.2", 0.1, 0)->describe(),
            "multistep(lr=0.1, milestones=[30, 60], gamma=0.2)");
  EXPECT_EQ(parse_lr_schedule("cosine", 0.1, 90)->describe(),
            "cosine(lr=0.1, total_steps=90, eta_min=0)");
  EXPECT_EQ(parse_lr_schedule("cosine:1e-5", 0.1, 90)->describe(),
            "cosine(lr=0.1, total_steps=90, eta_min=1e-05)");
  EXPECT_EQ(parse_lr_schedule("onecycle", 0.1, 90)->describe(),
            "onecycle(max_lr=0.1, total_steps=90, pct_start=0.3, div_factor=25, "
            "final_div_factor=10000)");
  EXPECT_EQ(parse_lr_schedule("onecycle:0.25:10", 0.1, 90)->describe(),
            "onecycle(max_lr=0.1, total_steps=90, pct_start=0.25, div_factor=10, "
            "final_div_factor=10000)");
}

// The warm-up takes its steps out of the run: cosine spans total - warmup.
TEST(LrScheduleSpec, WarmupComposesAndShortensTheMainSchedule) {
  const auto s = parse_lr_schedule("cosine", 0.1, 100, 10, 0.5);
  EXPECT_EQ(s->describe(),
            "warmup(steps=10, start_factor=0.5) then cosine(lr=0.1, total_steps=90, eta_min=0)");
  EXPECT_DOUBLE_EQ(s->lr_at(0), 0.05);
  EXPECT_DOUBLE_EQ(s->lr_at(10), 0.1);
  EXPECT_NEAR(s->lr_at(100), 0.0, 1e-15);
  EXPECT_EQ(parse_lr_schedule("constant", 0.1, 0, 0)->describe(), "constant(lr=0.1)");
}

TEST(LrScheduleSpec, Errors) {
  EXPECT_TRAIN_ERROR(parse_lr_schedule("linear", 0.1, 10), "'linear'", "unknown kind",
                     "known: constant", "cosine", "onecycle", "multistep");
  EXPECT_TRAIN_ERROR(parse_lr_schedule("", 0.1, 10), "unknown kind ''");
  EXPECT_TRAIN_ERROR(parse_lr_schedule("multistep", 0.1, 10), "'multistep'", "expected milestones");
  EXPECT_TRAIN_ERROR(parse_lr_schedule("multistep:30,x", 0.1, 10), "milestone", "'x'", "integer");
  EXPECT_TRAIN_ERROR(parse_lr_schedule("multistep:30,", 0.1, 10), "milestone", "''");
  EXPECT_TRAIN_ERROR(parse_lr_schedule("multistep:60,30", 0.1, 10), "strictly increasing");
  EXPECT_TRAIN_ERROR(parse_lr_schedule("multistep:30:0.1:2", 0.1, 10), "at most 2");
  EXPECT_TRAIN_ERROR(parse_lr_schedule("multistep:30:abc", 0.1, 10), "gamma", "'abc'");
  EXPECT_TRAIN_ERROR(parse_lr_schedule("cosine:0.1x", 0.1, 10), "eta_min", "'0.1x'");
  EXPECT_TRAIN_ERROR(parse_lr_schedule("cosine:nan", 0.1, 10), "eta_min", "finite");
  EXPECT_TRAIN_ERROR(parse_lr_schedule("constant:1", 0.1, 10), "at most 0");
  EXPECT_TRAIN_ERROR(parse_lr_schedule("cosine", 0.1, 0), "total steps (0)");
  EXPECT_TRAIN_ERROR(parse_lr_schedule("onecycle", 0.1, 5, 5), "total steps (5)",
                     "warm-up steps (5)");
  EXPECT_TRAIN_ERROR(parse_lr_schedule("onecycle:2", 0.1, 50), "pct_start", "2");
  EXPECT_TRAIN_ERROR(parse_lr_schedule("constant", 0.1, 10, -2), "warm-up steps >= 0");
}

}  // namespace
}  // namespace resnet
