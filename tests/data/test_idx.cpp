#include "resnet/data/idx.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "data/data_test_util.h"
#include "resnet/data/byte_reader.h"

namespace resnet::data {
namespace {

using testing::idx_images;
using testing::idx_labels;
using testing::TempDir;
using testing::test_pixel;
using testing::test_pixels;
using testing::write_bytes;

class IdxTest : public ::testing::Test {
 protected:
  // Three 2x3 images, labels 0, 9, 4.
  void write_split(const std::string& images, const std::string& labels, bool gzip) {
    std::string img = idx_images(3, 2, 3, test_pixels(3, 6));
    std::string lab = idx_labels({0, 9, 4});
    if (gzip) {
      write_gzip_file(dir_.file(images), img);
      write_gzip_file(dir_.file(labels), lab);
    } else {
      write_bytes(dir_.file(images), img);
      write_bytes(dir_.file(labels), lab);
    }
  }

  void expect_golden(const Dataset& d) {
    ASSERT_EQ(d.size(), 3);
    EXPECT_EQ(d.image_shape(), (ImageShape{1, 2, 3}));
    EXPECT_EQ(d.num_classes(), 10);
    EXPECT_EQ(d.label(0), 0);
    EXPECT_EQ(d.label(1), 9);
    EXPECT_EQ(d.label(2), 4);
    for (int64_t i = 0; i < 3; ++i) {
      Example e = d.get(i);
      ASSERT_EQ(e.image.shape(), (Shape{1, 2, 3}));
      for (int64_t p = 0; p < 6; ++p) {
        // ToTensor's scaling: byte / 255 in float.
        EXPECT_EQ(e.image.f32()[p], static_cast<float>(test_pixel(i, p)) / 255.0f);
      }
    }
  }

  TempDir dir_;
};

TEST_F(IdxTest, RawFilesGolden_3x1x2x3) {
  write_split("i", "l", false);
  expect_golden(*open_idx_dataset(dir_.file("i"), dir_.file("l"), "t", 10));
}

TEST_F(IdxTest, GzipFilesGolden_3x1x2x3) {
  write_split("i.gz", "l.gz", true);
  expect_golden(*open_idx_dataset(dir_.file("i.gz"), dir_.file("l.gz"), "t", 10));
}

TEST_F(IdxTest, FashionDirectoryGzipHasClassNames) {
  write_split("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", true);
  write_split("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", true);
  DatasetPair pair = open_mnist_dir(dir_.path().string(), IdxFlavor::fashion_mnist);
  expect_golden(*pair.train);
  expect_golden(*pair.test);
  EXPECT_EQ(pair.train->class_names().front(), "T-shirt/top");
  EXPECT_EQ(pair.train->class_names().back(), "Ankle boot");
}

TEST_F(IdxTest, MnistDirectoryRawDottedNamesHasNumberedClasses) {
  write_split("train-images.idx3-ubyte", "train-labels.idx1-ubyte", false);
  write_split("t10k-images.idx3-ubyte", "t10k-labels.idx1-ubyte", false);
  DatasetPair pair = open_mnist_dir(dir_.path().string(), IdxFlavor::mnist);
  expect_golden(*pair.train);
  EXPECT_EQ(pair.test->class_names()[7], "7");
}

// --- bad input ---

TEST_F(IdxTest, WrongMagicIsRefused) {
  write_bytes(dir_.file("i"), idx_labels({1, 2, 3}));
  EXPECT_IO_ERROR(read_idx_images(dir_.file("i")), dir_.file("i"), "magic 00 00 08 03",
                  "got 00 00 08 01");
  write_bytes(dir_.file("l"), idx_images(1, 1, 1, {0}));
  EXPECT_IO_ERROR(read_idx_labels(dir_.file("l")), dir_.file("l"), "magic 00 00 08 01");
}

TEST_F(IdxTest, TruncatedRawImagesAreRefused) {
  std::string bytes = idx_images(3, 2, 3, test_pixels(3, 6));
  write_bytes(dir_.file("i"), bytes.substr(0, bytes.size() - 1));
  EXPECT_IO_ERROR(read_idx_images(dir_.file("i")), dir_.file("i"), "16 + 18 bytes",
                  "3 images of 2x3", "got a file of 33 bytes");
  write_bytes(dir_.file("h"), bytes.substr(0, 10));
  EXPECT_IO_ERROR(read_idx_images(dir_.file("h")), dir_.file("h"), "truncated", "dimensions");
}

TEST_F(IdxTest, TrailingBytesAreRefused) {
  write_bytes(dir_.file("i"), idx_images(3, 2, 3, test_pixels(3, 6)) + "x");
  EXPECT_IO_ERROR(read_idx_images(dir_.file("i")), dir_.file("i"), "got a file of 35 bytes");
  write_gzip_file(dir_.file("i.gz"), idx_images(3, 2, 3, test_pixels(3, 6)) + "xyz");
  EXPECT_IO_ERROR(read_idx_images(dir_.file("i.gz")), dir_.file("i.gz"),
                  "expected the pixels to end after 34 bytes", "got 3 more");
}

TEST_F(IdxTest, HostileCountsAreRefusedBeforeAllocating) {
  // 4 G images of 64 K x 64 K pixels in a 16-byte file: must not allocate 2^64 bytes.
  write_bytes(dir_.file("i"), idx_images(0xffffffffu, 0xffffu, 0xffffu, {}));
  EXPECT_IO_ERROR(read_idx_images(dir_.file("i")), dir_.file("i"), "4294967295 images");
  write_gzip_file(dir_.file("i.gz"), idx_images(100000, 1000, 1000, {1, 2, 3}));
  EXPECT_IO_ERROR(read_idx_images(dir_.file("i.gz")), dir_.file("i.gz"), "expected at most",
                  "claims 100000000000");
  write_bytes(dir_.file("l"), idx_labels({}).substr(0, 4) + testing::be_u32(0xfffffff0u));
  EXPECT_IO_ERROR(read_idx_labels(dir_.file("l")), dir_.file("l"), "4294967280 labels");
}

TEST_F(IdxTest, GzipBeyondTheDecompressedLimitIsRefusedBeforeAllocating) {
  // A header claiming 5 GB behind a file of 5 MB (which deflate's ratio would allow): over
  // the 4 GiB a gzip stream may decompress to. The bytes after the header are never read.
  std::string gz;
  write_gzip_file(dir_.file("head.gz"), idx_images(5000, 1000, 1000, {}));
  gz = testing::read_bytes(dir_.file("head.gz"));
  gz.resize(5u << 20, '\x5a');
  write_bytes(dir_.file("i.gz"), gz);
  EXPECT_IO_ERROR(read_idx_images(dir_.file("i.gz")), dir_.file("i.gz"),
                  "expected at most 4294967296 bytes", "claims 5000000000");
}

TEST_F(IdxTest, GzipShorterThanHeaderIsRefused) {
  // A complete gzip stream whose content is one image short of what the header says.
  std::string bytes = idx_images(3, 2, 3, test_pixels(3, 6));
  write_gzip_file(dir_.file("i.gz"), bytes.substr(0, bytes.size() - 6));
  EXPECT_IO_ERROR(read_idx_images(dir_.file("i.gz")), dir_.file("i.gz"), "truncated gzip stream",
                  "expected 18 bytes of pixels", "got 12");
}

TEST_F(IdxTest, CutGzipStreamIsRefused) {
  std::string bytes = idx_images(50, 8, 8, test_pixels(50, 64));
  write_gzip_file(dir_.file("full.gz"), bytes);
  std::string gz = testing::read_bytes(dir_.file("full.gz"));
  write_bytes(dir_.file("cut.gz"), gz.substr(0, gz.size() / 2));
  EXPECT_IO_ERROR(read_idx_images(dir_.file("cut.gz")), dir_.file("cut.gz"), "gzip stream");
}

TEST_F(IdxTest, CorruptGzipStreamIsRefused) {
  std::string bytes = idx_images(50, 8, 8, test_pixels(50, 64));
  write_gzip_file(dir_.file("full.gz"), bytes);
  std::string gz = testing::read_bytes(dir_.file("full.gz"));
  // Flip bits in the deflate data (after the 10-byte gzip header) and in the CRC.
  for (size_t i = 12; i < gz.size(); i += 7) gz[i] = static_cast<char>(gz[i] ^ 0x5a);
  write_bytes(dir_.file("bad.gz"), gz);
  EXPECT_IO_ERROR(read_idx_images(dir_.file("bad.gz")), dir_.file("bad.gz"));
}

TEST_F(IdxTest, ZeroCountAndEmptyImagesAreRefused) {
  write_bytes(dir_.file("i"), idx_images(0, 2, 2, {}));
  EXPECT_IO_ERROR(read_idx_images(dir_.file("i")), dir_.file("i"), "at least one image");
  write_bytes(dir_.file("j"), idx_images(2, 0, 2, {}));
  EXPECT_IO_ERROR(read_idx_images(dir_.file("j")), dir_.file("j"), "positive image size",
                  "got 0x2");
}

TEST_F(IdxTest, LabelCountMismatchIsRefused) {
  write_bytes(dir_.file("i"), idx_images(3, 2, 3, test_pixels(3, 6)));
  write_bytes(dir_.file("l"), idx_labels({1, 2}));
  EXPECT_IO_ERROR(open_idx_dataset(dir_.file("i"), dir_.file("l"), "t", 10), dir_.file("l"),
                  "expected 3 labels", dir_.file("i"), "got 2");
}

TEST_F(IdxTest, LabelOutOfRangeIsRefused) {
  write_bytes(dir_.file("i"), idx_images(3, 2, 3, test_pixels(3, 6)));
  write_bytes(dir_.file("l"), idx_labels({1, 12, 3}));
  EXPECT_IO_ERROR(open_idx_dataset(dir_.file("i"), dir_.file("l"), "t", 10), dir_.file("l"),
                  "expected labels in [0, 10)", "got 12 at index 1");
}

TEST_F(IdxTest, MissingDirectoryAndFilesAreNamed) {
  const std::string missing = dir_.file("nope");
  EXPECT_IO_ERROR(open_mnist_dir(missing, IdxFlavor::mnist, "install it"), missing,
                  "no such directory", "(install it)");
  write_split("train-images-idx3-ubyte", "train-labels-idx1-ubyte", false);
  EXPECT_IO_ERROR(open_mnist_dir(dir_.path().string(), IdxFlavor::mnist), dir_.path().string(),
                  "t10k-images-idx3-ubyte or t10k-images-idx3-ubyte.gz", "got neither");
}

TEST_F(IdxTest, DirectoryInPlaceOfFileIsRefused) {
  std::filesystem::create_directory(dir_.file("d"));
  EXPECT_IO_ERROR(read_idx_labels(dir_.file("d")), dir_.file("d"), "regular file");
  EXPECT_IO_ERROR(read_idx_labels(dir_.file("x")), dir_.file("x"), "existing file");
}

}  // namespace
}  // namespace resnet::data
