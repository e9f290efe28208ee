#include "resnet/data/open_dataset.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "data/data_test_util.h"
#include "resnet/data/byte_reader.h"
#include "resnet/data/image_codec.h"
#include "resnet/data/stats.h"

namespace resnet::data {
namespace {

using testing::TempDir;

TEST(DataOpenTest, UnknownSpecListsTheKnownForms) {
  EXPECT_IO_ERROR(open_dataset("imagenet:/x"), "dataset", "got 'imagenet:/x'", "fashion-mnist",
                  "mnist:DIR", "cifar10:DIR", "cifar100:DIR", "folder:DIR");
  EXPECT_IO_ERROR(open_dataset("cifar10:"), "cifar10:DIR", "got none");
  EXPECT_IO_ERROR(open_dataset(""), "expected one of", "got ''");
}

TEST(DataOpenTest, MissingDefaultFashionMnistNamesTheDebianPackage) {
  TempDir dir;
  const std::string missing = dir.file("fashion-mnist");
  EXPECT_IO_ERROR(open_debian_fashion_mnist(missing), missing, "no such directory",
                  "dataset-fashion-mnist");
  std::filesystem::create_directory(missing);
  EXPECT_IO_ERROR(open_debian_fashion_mnist(missing), "train-images-idx3-ubyte",
                  "dataset-fashion-mnist");
}

TEST(DataOpenTest, SpecsReachTheirReaders) {
  TempDir dir;
  const std::string idx = std::string("\0\0\x08\x03", 4) + testing::be_u32(1) + testing::be_u32(2) +
                          testing::be_u32(2) + "abcd";
  for (const char* split : {"train", "t10k"}) {
    write_gzip_file(dir.file(std::string(split) + "-images-idx3-ubyte.gz"), idx);
    write_gzip_file(dir.file(std::string(split) + "-labels-idx1-ubyte.gz"),
                    testing::idx_labels({8}));
  }
  DatasetPair fashion = open_dataset("fashion-mnist:" + dir.path().string());
  EXPECT_EQ(fashion.train->class_names()[static_cast<size_t>(fashion.train->label(0))], "Bag");
  EXPECT_EQ(open_dataset("mnist:" + dir.path().string()).test->class_names()[8], "8");
  EXPECT_IO_ERROR(open_dataset("cifar100:" + dir.path().string()), "train.bin");

  const std::vector<uint8_t> px(3 * 6 * 4, 100);
  std::filesystem::create_directories(dir.path() / "imgs/train/x");
  std::filesystem::create_directories(dir.path() / "imgs/val/x");
  write_png(dir.file("imgs/train/x/a.png"), px.data(), {3, 6, 4});
  write_png(dir.file("imgs/val/x/b.png"), px.data(), {3, 6, 4});
  EXPECT_EQ(open_dataset("folder:" + dir.file("imgs")).train->image_shape(), (ImageShape{3, 6, 4}));
  EXPECT_EQ(open_dataset("folder:" + dir.file("imgs") + ":3x2").test->image_shape(),
            (ImageShape{3, 3, 2}));
}

TEST(DataFashionMnistTest, DebianPackageHas60000And10000WithAnkleBootFirst) {
  if (!std::filesystem::exists(kDebianFashionMnistDir)) {
    GTEST_SKIP() << kDebianFashionMnistDir << " absent (Debian package dataset-fashion-mnist)";
  }
  DatasetPair pair = open_dataset("fashion-mnist");
  ASSERT_EQ(pair.train->size(), 60000);
  ASSERT_EQ(pair.test->size(), 10000);
  EXPECT_EQ(pair.train->image_shape(), (ImageShape{1, 28, 28}));
  EXPECT_EQ(pair.train->num_classes(), 10);
  // The first training image is an ankle boot (label 9), the first test image too.
  EXPECT_EQ(pair.train->label(0), 9);
  EXPECT_EQ(pair.train->class_names()[9], "Ankle boot");
  EXPECT_EQ(pair.test->label(0), 9);
  // Statistics quoted for Fashion-MNIST's training set: mean 0.2860, std 0.3530.
  ChannelStats stats = compute_channel_stats(*pair.train);
  EXPECT_NEAR(stats.mean[0], 0.2860f, 5e-4f);
  EXPECT_NEAR(stats.std[0], 0.3530f, 5e-4f);
}

}  // namespace
}  // namespace resnet::data
