#include "resnet/data/cifar.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "data/data_test_util.h"

namespace resnet::data {
namespace {

using testing::cifar_records;
using testing::TempDir;
using testing::test_pixel;
using testing::write_bytes;

class CifarTest : public ::testing::Test {
 protected:
  // Batch k (1..5) holds one record with label k - 1 (image number k - 1); the test batch
  // two records, labels 7 and 3 (images 100 and 101).
  void write_cifar10(const std::filesystem::path& dir) {
    std::filesystem::create_directories(dir);
    for (int k = 1; k <= 5; ++k) {
      write_bytes((dir / ("data_batch_" + std::to_string(k) + ".bin")).string(),
                  cifar_records({{static_cast<uint8_t>(k - 1)}}, k - 1));
    }
    write_bytes((dir / "test_batch.bin").string(), cifar_records({{7}, {3}}, 100));
  }

  std::string path(const std::string& name) const { return dir_.file(name); }

  TempDir dir_;
};

TEST_F(CifarTest, Cifar10Golden) {
  write_cifar10(dir_.path());
  write_bytes(path("batches.meta.txt"),
              "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n");
  DatasetPair pair = open_cifar_dir(dir_.path().string(), CifarKind::cifar10);
  ASSERT_EQ(pair.train->size(), 5);
  ASSERT_EQ(pair.test->size(), 2);
  EXPECT_EQ(pair.train->image_shape(), (ImageShape{3, 32, 32}));
  EXPECT_EQ(pair.train->num_classes(), 10);
  EXPECT_EQ(pair.train->class_names()[9], "truck");
  for (int64_t i = 0; i < 5; ++i) EXPECT_EQ(pair.train->label(i), i);
  EXPECT_EQ(pair.test->label(0), 7);
  EXPECT_EQ(pair.test->label(1), 3);
  // The planes are stored R, G, B: pixel p of the record is element p of [3, 32, 32].
  Example e = pair.test->get(1);
  for (int64_t p : {0, 1, 1023, 1024, 2048, 3071}) {
    EXPECT_EQ(e.image.f32()[p], static_cast<float>(test_pixel(101, p)) / 255.0f) << p;
  }
}

TEST_F(CifarTest, Cifar10InTarballDirectoryWithoutMeta) {
  write_cifar10(dir_.path() / "cifar-10-batches-bin");
  DatasetPair pair = open_cifar_dir(dir_.path().string(), CifarKind::cifar10);
  EXPECT_EQ(pair.train->size(), 5);
  EXPECT_EQ(pair.train->class_names()[3], "3");
}

TEST_F(CifarTest, Cifar100UsesFineLabel) {
  write_bytes(path("train.bin"), cifar_records({{19, 99}, {0, 42}, {5, 0}}));
  write_bytes(path("test.bin"), cifar_records({{3, 17}}, 7));
  DatasetPair pair = open_cifar_dir(dir_.path().string(), CifarKind::cifar100);
  ASSERT_EQ(pair.train->size(), 3);
  EXPECT_EQ(pair.train->num_classes(), 100);
  EXPECT_EQ(pair.train->label(0), 99);
  EXPECT_EQ(pair.train->label(1), 42);
  EXPECT_EQ(pair.train->label(2), 0);
  EXPECT_EQ(pair.test->label(0), 17);
  EXPECT_EQ(pair.test->get(0).image.f32()[5], static_cast<float>(test_pixel(7, 5)) / 255.0f);
}

// --- bad input ---

TEST_F(CifarTest, PartialRecordIsRefused) {
  write_cifar10(dir_.path());
  std::string bytes = cifar_records({{1}, {2}});
  write_bytes(path("data_batch_3.bin"), bytes.substr(0, bytes.size() - 5));
  EXPECT_IO_ERROR(open_cifar_dir(dir_.path().string(), CifarKind::cifar10),
                  path("data_batch_3.bin"), "3073-byte", "got 6141 bytes",
                  "1 records and 3068 bytes over");
}

TEST_F(CifarTest, EmptyFileIsRefused) {
  write_cifar10(dir_.path());
  write_bytes(path("test_batch.bin"), "");
  EXPECT_IO_ERROR(open_cifar_dir(dir_.path().string(), CifarKind::cifar10), path("test_batch.bin"),
                  "non-zero number", "got 0 bytes");
}

TEST_F(CifarTest, LabelOutOfRangeIsRefused) {
  write_cifar10(dir_.path());
  write_bytes(path("data_batch_2.bin"), cifar_records({{1}, {10}}));
  EXPECT_IO_ERROR(open_cifar_dir(dir_.path().string(), CifarKind::cifar10),
                  path("data_batch_2.bin"), "expected labels in [0, 10)", "got 10 at record 1");
  write_bytes(path("train.bin"), cifar_records({{3, 100}}));
  write_bytes(path("test.bin"), cifar_records({{3, 1}}));
  EXPECT_IO_ERROR(open_cifar_dir(dir_.path().string(), CifarKind::cifar100), path("train.bin"),
                  "expected labels in [0, 100)", "got 100 at record 0");
  write_bytes(path("train.bin"), cifar_records({{20, 1}}));
  EXPECT_IO_ERROR(open_cifar_dir(dir_.path().string(), CifarKind::cifar100), path("train.bin"),
                  "coarse labels in [0, 20)", "got 20");
}

TEST_F(CifarTest, Cifar100FileSizeUsesTwoLabelBytes) {
  // A CIFAR-10 file (3073-byte records) given as CIFAR-100 does not divide into records.
  write_bytes(path("train.bin"), cifar_records({{1}, {2}}));
  write_bytes(path("test.bin"), cifar_records({{3, 1}}));
  EXPECT_IO_ERROR(open_cifar_dir(dir_.path().string(), CifarKind::cifar100), path("train.bin"),
                  "3074-byte cifar100 records", "got 6146 bytes");
}

TEST_F(CifarTest, MissingFilesAndDirectoryAreNamed) {
  write_cifar10(dir_.path());
  std::filesystem::remove(path("data_batch_4.bin"));
  EXPECT_IO_ERROR(open_cifar_dir(dir_.path().string(), CifarKind::cifar10), dir_.path().string(),
                  "data_batch_4.bin", "no such file");
  EXPECT_IO_ERROR(open_cifar_dir(path("nope"), CifarKind::cifar100), path("nope"),
                  "no such directory");
}

TEST_F(CifarTest, WrongClassNameCountIsRefused) {
  write_cifar10(dir_.path());
  write_bytes(path("batches.meta.txt"), "airplane\nautomobile\n");
  EXPECT_IO_ERROR(open_cifar_dir(dir_.path().string(), CifarKind::cifar10),
                  path("batches.meta.txt"), "expected 10 class names", "got 2");
}

}  // namespace
}  // namespace resnet::data
