// Which pipeline a dataset gets: fixed-size datasets at their own size keep the first
// recipes' transforms; images of mixed sizes, or another crop size, get the resized crops.

#include "resnet/data/pipeline.h"

#include <gtest/gtest.h>

#include "data/data_test_util.h"

namespace resnet::data {
namespace {

PipelineOptions options(int64_t size, int64_t channels = 1) {
  PipelineOptions o;
  o.size = size;
  o.crop_padding = 2;
  o.mean.assign(static_cast<size_t>(channels), 0.5f);
  o.std.assign(static_cast<size_t>(channels), 0.25f);
  return o;
}

TEST(Pipeline, FixedSizeDatasetAtItsOwnSizeKeepsTheFirstRecipes) {
  auto ds = testing::synthetic_dataset(4, {1, 28, 28});
  for (int64_t size : {0, 28}) {
    const Pipeline p = make_pipeline(*ds, options(size));
    EXPECT_FALSE(p.resized);
    EXPECT_EQ(p.train_sample, nullptr);
    EXPECT_EQ(p.eval_sample, nullptr);
    EXPECT_EQ(
        p.train->repr(),
        "Compose(\n    RandomCrop(size=(28, 28), padding=2)\n    RandomHorizontalFlip(p=0.5)\n"
        "    Normalize(mean=[0.5], std=[0.25])\n)");
    EXPECT_EQ(p.eval->repr(), "Normalize(mean=[0.5], std=[0.25])");
  }
}

TEST(Pipeline, AnotherSizeCropsAndResizesWithTheDefaultResize) {
  auto ds = testing::synthetic_dataset(4, {1, 28, 28});
  const Pipeline p = make_pipeline(*ds, options(24));
  EXPECT_TRUE(p.resized);
  EXPECT_EQ(p.size, 24);
  EXPECT_EQ(p.resize, 27);  // 24 * 256 / 224 = 27.4
  EXPECT_EQ(p.eval, nullptr);
  EXPECT_EQ(p.eval_sample->output_shape(1), (ImageShape{1, 24, 24}));
  EXPECT_EQ(p.eval_preprocessing.resize_shorter, 27);
  EXPECT_EQ(p.eval_preprocessing.mean, std::vector<float>{0.5f});
  EXPECT_EQ(default_resize(224), 256);
  EXPECT_EQ(default_resize(32), 37);
  PipelineOptions o = options(24);
  o.resize = 30;
  EXPECT_EQ(make_pipeline(*ds, o).eval_preprocessing.resize_shorter, 30);
  EXPECT_THROW(make_pipeline(*ds, options(24, 3)), Error);  // 3 means for 1 channel
}

TEST(Pipeline, CropScaleSetsTheSmallestAreaOfTheResizedCrop) {
  auto ds = testing::synthetic_dataset(4, {1, 28, 28});
  EXPECT_NE(make_pipeline(*ds, options(24)).train_sample->repr().find("scale=(0.08, 1)"),
            std::string::npos);
  PipelineOptions o = options(24);
  o.crop_scale = 0.35;
  const std::string repr = make_pipeline(*ds, o).train_sample->repr();
  EXPECT_NE(repr.find("scale=(0.35, 1)"), std::string::npos) << repr;
  o.crop_scale = 0;
  EXPECT_THROW(make_pipeline(*ds, o), Error);
}

}  // namespace
}  // namespace resnet::data
