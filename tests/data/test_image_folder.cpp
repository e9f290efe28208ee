#include "resnet/data/image_folder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "data/data_test_util.h"
#include "resnet/data/image_codec.h"

namespace resnet::data {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::test_pixel;
using testing::test_pixels;
using testing::write_bytes;

// Bytes of a C x H x W image whose every pixel has the given channel values.
std::vector<uint8_t> solid(int64_t h, int64_t w, std::vector<uint8_t> values) {
  const int64_t c = static_cast<int64_t>(values.size());
  std::vector<uint8_t> chw(static_cast<size_t>(c * h * w));
  for (int64_t k = 0; k < c; ++k) {
    std::fill(chw.begin() + k * h * w, chw.begin() + (k + 1) * h * w,
              values[static_cast<size_t>(k)]);
  }
  return chw;
}

class FolderTest : public ::testing::Test {
 protected:
  // DIR/SPLIT/CLASS/NAME as a PNG of `shape` with pixels test_pixels(id, ...).
  std::string png(const std::string& rel, ImageShape shape, int64_t id) {
    std::string p = file(rel);
    std::vector<uint8_t> px = test_pixels(1, shape.numel());
    for (int64_t i = 0; i < shape.numel(); ++i) px[static_cast<size_t>(i)] = test_pixel(id, i);
    write_png(p, px.data(), shape);
    return p;
  }
  std::string file(const std::string& rel) {
    fs::path p = dir_.path() / rel;
    fs::create_directories(p.parent_path());
    return p.string();
  }
  std::string root() const { return dir_.path().string(); }

  TempDir dir_;
};

TEST_F(FolderTest, PngGoldenSortedClassesAndFiles) {
  const ImageShape s{3, 4, 5};
  png("train/dog/b.png", s, 2);
  png("train/cat/z.PNG", s, 1);
  png("train/cat/a.png", s, 0);
  png("train/cat/.hidden.png", s, 9);
  write_bytes(file("train/cat/notes.txt"), "not an image");
  png("val/cat/v.png", s, 5);
  fs::create_directories(dir_.path() / "val/dog");
  DatasetPair pair = open_image_folder(root());
  ASSERT_EQ(pair.train->size(), 3);
  ASSERT_EQ(pair.test->size(), 1);
  EXPECT_EQ(pair.train->class_names(), (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(pair.train->image_shape(), s);
  // Class order, then file order: cat/a, cat/z, dog/b.
  const int64_t ids[] = {0, 1, 2};
  const int64_t labels[] = {0, 0, 1};
  for (int64_t i = 0; i < 3; ++i) {
    Example e = pair.train->get(i);
    EXPECT_EQ(e.label, labels[i]);
    for (int64_t p = 0; p < s.numel(); ++p) {
      ASSERT_EQ(e.image.f32()[p], static_cast<float>(test_pixel(ids[i], p)) / 255.0f) << i;
    }
  }
  EXPECT_EQ(pair.test->get(0).image.f32()[7], static_cast<float>(test_pixel(5, 7)) / 255.0f);
}

TEST_F(FolderTest, JpegDecodesCloseToItsSource) {
  const ImageShape s{3, 8, 8};
  const std::vector<uint8_t> px = solid(8, 8, {200, 100, 30});
  write_jpeg(file("train/a/x.jpg"), px.data(), s, 100);
  write_jpeg(file("val/a/y.JPEG"), px.data(), s, 100);
  DatasetPair pair = open_image_folder(root());
  Example e = pair.train->get(0);
  ASSERT_EQ(e.image.shape(), (Shape{3, 8, 8}));
  for (int64_t i = 0; i < s.numel(); ++i) {
    EXPECT_NEAR(e.image.f32()[i] * 255.0f, px[static_cast<size_t>(i)], 3.0f) << i;
  }
}

TEST_F(FolderTest, OneColourImageMakesTheFolderRgbEvenAfterAGrayFirst) {
  std::vector<uint8_t> gray = solid(2, 2, {77});
  write_png(file("train/a/0.png"), gray.data(), {1, 2, 2});
  write_png(file("train/b/1.png"), gray.data(), {1, 2, 2});
  std::vector<uint8_t> rgb = solid(2, 2, {10, 200, 30});
  write_png(file("val/a/2.png"), rgb.data(), {3, 2, 2});
  fs::create_directories(dir_.path() / "val/b");
  DatasetPair pair = open_image_folder(root());
  EXPECT_EQ(pair.train->image_shape(), (ImageShape{3, 2, 2}));
  for (int64_t c = 0; c < 3; ++c) EXPECT_EQ(pair.train->get(0).image.f32()[c * 4], 77.0f / 255.0f);
  EXPECT_EQ(pair.test->get(0).image.f32()[4], 200.0f / 255.0f);
  // An all-gray folder stays gray.
  fs::remove(file("val/a/2.png"));
  write_png(file("val/a/2.png"), gray.data(), {1, 2, 2});
  EXPECT_EQ(open_image_folder(root()).train->image_shape(), (ImageShape{1, 2, 2}));
}

TEST_F(FolderTest, GrayFolderConvertsColourWithPillowLuma) {
  std::vector<uint8_t> gray = solid(2, 2, {77});
  write_png(file("train/a/0.png"), gray.data(), {1, 2, 2});
  std::vector<uint8_t> rgb = solid(2, 2, {10, 200, 30});
  write_png(file("train/b/1.png"), rgb.data(), {3, 2, 2});
  std::vector<uint8_t> rgba = solid(2, 2, {10, 200, 30, 0});
  write_png(file("val/a/2.png"), rgba.data(), {4, 2, 2});
  fs::create_directories(dir_.path() / "val/b");
  FolderOptions gray_options;
  gray_options.channels = 1;
  DatasetPair pair = open_image_folder(root(), gray_options);
  EXPECT_EQ(pair.train->image_shape(), (ImageShape{1, 2, 2}));
  EXPECT_EQ(pair.train->get(0).image.f32()[0], 77.0f / 255.0f);
  // Pillow: (10 * 19595 + 200 * 38470 + 30 * 7471 + 32768) >> 16 = 124.
  EXPECT_EQ(pair.train->get(1).image.f32()[3], 124.0f / 255.0f);
  EXPECT_EQ(pair.test->get(0).image.f32()[2], 124.0f / 255.0f);
}

TEST_F(FolderTest, RgbFolderRepeatsGrayAndDropsAlpha) {
  std::vector<uint8_t> rgb = solid(2, 2, {10, 200, 30});
  write_png(file("train/a/0.png"), rgb.data(), {3, 2, 2});
  std::vector<uint8_t> gray = solid(2, 2, {77});
  write_png(file("train/a/1.png"), gray.data(), {1, 2, 2});
  std::vector<uint8_t> rgba = solid(2, 2, {50, 60, 70, 0});
  write_png(file("val/a/2.png"), rgba.data(), {4, 2, 2});
  DatasetPair pair = open_image_folder(root());
  EXPECT_EQ(pair.train->image_shape(), (ImageShape{3, 2, 2}));
  Example g = pair.train->get(1);
  for (int64_t c = 0; c < 3; ++c) EXPECT_EQ(g.image.f32()[c * 4], 77.0f / 255.0f);
  Example a = pair.test->get(0);
  EXPECT_EQ(a.image.f32()[0], 50.0f / 255.0f);
  EXPECT_EQ(a.image.f32()[4], 60.0f / 255.0f);
  EXPECT_EQ(a.image.f32()[8], 70.0f / 255.0f);
}

TEST_F(FolderTest, ResizeOptionAcceptsMixedSizes) {
  std::vector<uint8_t> a = solid(4, 6, {90, 90, 90});
  write_png(file("train/a/0.png"), a.data(), {3, 4, 6});
  std::vector<uint8_t> b = solid(7, 3, {90, 90, 90});
  write_png(file("val/a/1.png"), b.data(), {3, 7, 3});
  FolderOptions options;
  options.height = 5;
  options.width = 5;
  options.channels = 1;
  DatasetPair pair = open_image_folder(root(), options);
  EXPECT_EQ(pair.test->image_shape(), (ImageShape{1, 5, 5}));
  Example e = pair.test->get(0);
  for (float v : e.image.values()) EXPECT_NEAR(v, 90.0f / 255.0f, 1e-6f);
}

// --- bad input ---

TEST_F(FolderTest, WrongSizeIsRefusedNamingTheFile) {
  const std::string first = png("train/a/0.png", {3, 4, 5}, 0);
  png("train/b/1.png", {3, 4, 5}, 1);
  const std::string odd = png("val/b/2.png", {3, 5, 5}, 2);
  fs::create_directories(dir_.path() / "val/a");
  EXPECT_IO_ERROR(open_image_folder(root()), odd, "expected a 4x5 image", first, "got 5x5");
}

TEST_F(FolderTest, NonImageIsRefusedNamingTheFile) {
  png("train/a/0.png", {1, 2, 2}, 0);
  write_bytes(file("train/a/1.png"), "<html>not found</html>");
  png("val/a/2.png", {1, 2, 2}, 0);
  EXPECT_IO_ERROR(open_image_folder(root()), file("train/a/1.png"), "expected a PNG or JPEG",
                  "3c 68 74 6d");
  write_bytes(file("train/a/1.png"), "");
  EXPECT_IO_ERROR(open_image_folder(root()), file("train/a/1.png"), "empty file");
  write_bytes(file("train/a/1.png"), std::string("\x89PNG\r\n\x1a\n", 8) + "garbage");
  EXPECT_IO_ERROR(open_image_folder(root()), file("train/a/1.png"), "PNG", "libpng");
}

TEST_F(FolderTest, TruncatedPngThrowsOnReadNamingTheFile) {
  png("train/a/0.png", {3, 16, 16}, 0);
  const std::string cut = png("train/a/1.png", {3, 16, 16}, 1);
  png("val/a/2.png", {3, 16, 16}, 2);
  std::string bytes = testing::read_bytes(cut);
  write_bytes(cut, bytes.substr(0, bytes.size() / 2));  // inside the image data
  DatasetPair pair = open_image_folder(root());         // headers are intact
  EXPECT_IO_ERROR(pair.train->get(1), cut, "expected a complete PNG image");
}

TEST_F(FolderTest, TruncatedJpegThrowsOnReadNamingTheFile) {
  std::vector<uint8_t> noise = test_pixels(1, 3 * 32 * 32);
  write_jpeg(file("train/a/0.jpg"), noise.data(), {3, 32, 32});
  write_jpeg(file("val/a/1.jpg"), noise.data(), {3, 32, 32});
  std::string bytes = testing::read_bytes(file("train/a/0.jpg"));
  write_bytes(file("train/a/0.jpg"), bytes.substr(0, bytes.size() / 2));
  DatasetPair pair = open_image_folder(root());
  EXPECT_IO_ERROR(pair.train->get(0), file("train/a/0.jpg"), "libjpeg", "Premature end");
}

TEST_F(FolderTest, ValClassesMustMatchTrain) {
  png("train/a/0.png", {1, 2, 2}, 0);
  png("train/b/1.png", {1, 2, 2}, 0);
  png("val/a/2.png", {1, 2, 2}, 0);
  png("val/c/3.png", {1, 2, 2}, 0);
  EXPECT_IO_ERROR(open_image_folder(root()), file("val"), "expected the same classes as",
                  "missing: b", "extra: c");
}

TEST_F(FolderTest, EmptyTrainClassMissingSplitAndDirectoryAreRefused) {
  EXPECT_IO_ERROR(open_image_folder(file("nope")), file("nope"), "no such directory");
  png("train/a/0.png", {1, 2, 2}, 0);
  EXPECT_IO_ERROR(open_image_folder(root()), root(), "val (or test)");
  png("test/a/1.png", {1, 2, 2}, 0);
  fs::create_directories(dir_.path() / "train/b");
  fs::create_directories(dir_.path() / "test/b");
  EXPECT_IO_ERROR(open_image_folder(root()), file("train/b"), "at least one");
  png("train/b/2.png", {1, 2, 2}, 0);
  DatasetPair pair = open_image_folder(root());  // test/ stands in for val/
  EXPECT_EQ(pair.test->size(), 1);
}

// --- images of any size ---

TEST_F(FolderTest, MixedSizesMakeAVariableSizeDatasetWithoutResizing) {
  png("train/a/0.png", {3, 4, 5}, 0);
  png("train/b/1.png", {3, 9, 2}, 1);
  png("val/b/2.png", {3, 5, 5}, 2);
  fs::create_directories(dir_.path() / "val/a");
  FolderOptions o;
  o.mixed_sizes = true;
  DatasetPair pair = open_image_folder(root(), o);
  EXPECT_EQ(pair.train->image_shape(), (ImageShape{3, 0, 0}));
  EXPECT_TRUE(pair.test->variable_size());
  EXPECT_EQ(pair.train->image_size(1), (ImageSize{9, 2}));
  const Pixels px = pair.train->read_pixels(1);
  EXPECT_EQ(px.shape, (ImageShape{3, 9, 2}));
  for (int64_t i = 0; i < 18; ++i) EXPECT_EQ(px.bytes[size_t(i)], test_pixel(1, i));
  std::vector<float> floats(100);
  EXPECT_IO_ERROR(pair.train->read_image(0, floats.data()), "several sizes");
  EXPECT_EQ(pair.train->example_name(1), file("train/b/1.png"));
  // One size throughout: the fixed-size dataset of before, floats included.
  png("val/b/2.png", {3, 4, 5}, 2);
  png("train/b/1.png", {3, 4, 5}, 1);
  EXPECT_EQ(open_image_folder(root(), o).train->image_shape(), (ImageShape{3, 4, 5}));
}

TEST_F(FolderTest, ClassSubdirectoriesAreWalkedInTorchvisionsOrder) {
  png("train/a/z.png", {1, 2, 2}, 0);
  png("train/a/deep/b.png", {1, 2, 2}, 1);
  png("train/a/deep/er/a.png", {1, 2, 2}, 2);
  png("train/a/Deep/c.png", {1, 2, 2}, 3);
  png("train/a/.hidden/d.png", {1, 2, 2}, 4);
  png("val/a/v.png", {1, 2, 2}, 5);
  const auto ds = open_image_folder(root()).train;
  // sorted(os.walk(...)): "a" < "a/Deep" < "a/deep" < "a/deep/er".
  ASSERT_EQ(ds->size(), 4);
  EXPECT_EQ(ds->example_name(0), file("train/a/z.png"));
  EXPECT_EQ(ds->example_name(1), file("train/a/Deep/c.png"));
  EXPECT_EQ(ds->example_name(2), file("train/a/deep/b.png"));
  EXPECT_EQ(ds->example_name(3), file("train/a/deep/er/a.png"));
}

TEST_F(FolderTest, SymbolicLinkLoopsAreRefusedNamingTheLink) {
  png("train/a/0.png", {1, 2, 2}, 0);
  png("val/a/1.png", {1, 2, 2}, 0);
  fs::create_directory_symlink(dir_.path() / "train/a", dir_.path() / "train/a/up");
  EXPECT_IO_ERROR(open_image_folder(root()), file("train/a/up"), "symbolic link loop",
                  file("train/a"));
  fs::remove(dir_.path() / "train/a/up");
  fs::create_symlink(dir_.path() / "train/a/self.png", dir_.path() / "train/a/self.png");
  EXPECT_IO_ERROR(open_image_folder(root()), file("train/a/self.png"), "symbolic link loop");
}

TEST_F(FolderTest, NoImagesAtAllAndNoValWithoutAHoldOutAreRefused) {
  fs::create_directories(dir_.path() / "train/a");
  fs::create_directories(dir_.path() / "val/a");
  EXPECT_IO_ERROR(open_image_folder(root()), file("train/a"), "at least one");
  png("train/a/0.png", {1, 2, 2}, 0);
  fs::remove_all(dir_.path() / "val");
  EXPECT_IO_ERROR(open_image_folder(root()), "val (or test)", "--val-split");
  FolderOptions o;
  o.val_optional = true;
  EXPECT_EQ(open_image_folder(root(), o).test, nullptr);
}

TEST_F(FolderTest, SkippingBadImagesAtOpenListsThem) {
  png("train/a/0.png", {1, 2, 2}, 0);
  write_bytes(file("train/a/1.png"), "<html>not found</html>");
  png("val/a/2.png", {1, 2, 2}, 0);
  FolderOptions o;
  o.skip_bad_images = true;
  DatasetPair pair = open_image_folder(root(), o);
  EXPECT_EQ(pair.train->size(), 1);
  const auto& skipped = static_cast<const ImageFolderDataset&>(*pair.train).skipped_at_open();
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_NE(skipped[0].find(file("train/a/1.png")), std::string::npos) << skipped[0];
  write_bytes(file("train/a/0.png"), "");
  EXPECT_IO_ERROR(open_image_folder(root(), o), file("train"), "at least one readable image",
                  "2 unreadable");
}

}  // namespace
}  // namespace resnet::data
