#include "resnet/data/fake_data.h"

#include <gtest/gtest.h>

#include <set>

#include "data/data_test_util.h"
#include "resnet/data/open_dataset.h"

namespace resnet::data {
namespace {

TEST(FakeDataTest, SpecGivesShapeClassesAndSizes) {
  DatasetPair d = open_dataset("fake:3x17x9:7:50");
  EXPECT_EQ(d.train->image_shape(), (ImageShape{3, 17, 9}));
  EXPECT_EQ(d.train->size(), 50);
  EXPECT_EQ(d.test->size(), 10);
  EXPECT_EQ(d.train->num_classes(), 7);
  std::set<int64_t> labels;
  for (int64_t i = 0; i < d.train->size(); ++i) labels.insert(d.train->label(i));
  EXPECT_GT(labels.size(), 3u);
  EXPECT_LT(*labels.rbegin(), 7);
  DatasetPair defaults = open_dataset("fake:1x4x4");
  EXPECT_EQ(defaults.train->size(), 1000);
  EXPECT_EQ(defaults.test->size(), 200);
  EXPECT_EQ(defaults.train->num_classes(), 10);
}

TEST(FakeDataTest, ImagesAreRandomAndAFunctionOfTheSpec) {
  DatasetPair a = open_dataset("fake:3x8x8:2:10"), b = open_dataset("fake:3x8x8:2:10");
  Pixels pa = a.train->read_pixels(1), pb = b.train->read_pixels(1), p0 = a.train->read_pixels(0);
  EXPECT_EQ(pa.bytes, pb.bytes);
  EXPECT_NE(pa.bytes, p0.bytes);
  EXPECT_NE(pa.bytes, a.test->read_pixels(0).bytes);  // train and test differ
  std::set<uint8_t> values(pa.bytes.begin(), pa.bytes.end());
  EXPECT_GT(values.size(), 100u);  // 192 uniform bytes
}

TEST(FakeDataTest, BadSpecsAreRefusedInOneLine) {
  EXPECT_IO_ERROR(open_dataset("fake:3x32"), "fake:3x32", "CxHxW", "got image shape '3x32'");
  EXPECT_IO_ERROR(open_dataset("fake:0x3x3"), "got image shape '0x3x3'");
  EXPECT_IO_ERROR(open_dataset("fake:3x3x3:0"), "got class count '0'");
  EXPECT_IO_ERROR(open_dataset("fake:3x3x3:2:-5"), "got image count '-5'");
  EXPECT_IO_ERROR(open_dataset("fake:3x3x3:2:5:1"), "got 4 fields");
  // A size that would take more than 2 GiB is refused before anything is allocated.
  EXPECT_IO_ERROR(open_dataset("fake:3x224x224:10:999999999"), "expected at most", "bytes");
  EXPECT_IO_ERROR(open_dataset("fake:999999999x999999999x999999999"), "expected at most");
}

}  // namespace
}  // namespace resnet::data
