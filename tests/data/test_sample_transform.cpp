// The training crop (RandomResizedCrop) and the evaluation crop (ResizeCenterCrop) on 8-bit
// pixels. The crop-and-resize is compared with torchvision 0.14 on Pillow 9.4 for given
// boxes (tests/fixtures/interop/resized_crop, tools/gen_resized_crop_fixtures.py) and must
// match byte for byte; get_params' fallback is compared where it does not depend on draws.

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "data/data_test_util.h"
#include "resnet/data/image_codec.h"
#include "resnet/data/image_folder.h"
#include "resnet/data/preprocess.h"
#include "resnet/data/sample_transform.h"
#include "resnet/data/transforms.h"
#include "resnet/io/npy.h"

namespace resnet::data {
namespace {

namespace fs = std::filesystem;

std::string fixture(const std::string& name) {
  return std::string(RESNET_FIXTURE_DIR) + "/interop/" + name;
}

int64_t I(const nlohmann::json& j) {
  return j.get<int64_t>();
}

double D(const nlohmann::json& j) {
  return j.get<double>();
}

CropBox box_of(const nlohmann::json& j) {
  return {I(j[0]), I(j[1]), I(j[2]), I(j[3])};
}

nlohmann::json cases() {
  std::ifstream in(fixture("resized_crop/cases.json"));
  EXPECT_TRUE(in);
  return nlohmann::json::parse(in);
}

TEST(ResizedCrop, MatchesTorchvisionByteForByte) {
  const auto all = cases().at("cases");
  ASSERT_EQ(all.size(), 6u);
  for (const auto& c : all) {
    const std::string image = c.at("image");
    ImageInfo info;
    const std::vector<uint8_t> pixels =
        decode_image(fixture("preprocess/" + image), 3, &info);  // ImageFolder's convert("RGB")
    const CropBox box = box_of(c.at("box"));
    const int64_t size = I(c.at("size"));
    std::vector<uint8_t> out =
        resized_crop(pixels.data(), {3, info.height, info.width}, box, size, size);
    Tensor ours({3, size, size});
    bytes_to_unit_floats(out.data(), ours.numel(), ours.f32());
    if (c.at("flip").get<bool>()) hflip(ours);
    const Tensor want =
        io::read_npy(fixture("resized_crop/" + c.at("expected_uint8").get<std::string>()));
    ASSERT_EQ(ours.shape(), want.shape()) << image;
    int64_t differing = 0;
    for (int64_t i = 0; i < ours.numel(); ++i) {
      differing += ours.f32()[i] != want.f32()[i] / 255.0f;
    }
    EXPECT_EQ(differing, 0) << image << " box " << c.at("box").dump() << " size " << size;
  }
}

TEST(ResizedCrop, FallbackBoxIsTorchvisionsCentralCrop) {
  const auto all = cases().at("fallbacks");
  ASSERT_EQ(all.size(), 4u);
  for (const auto& c : all) {
    Rng rng(7);
    const CropBox box = sample_resized_crop_box({I(c.at("height")), I(c.at("width"))},
                                                {D(c.at("scale")[0]), D(c.at("scale")[1])},
                                                {D(c.at("ratio")[0]), D(c.at("ratio")[1])}, rng);
    const CropBox want = box_of(c.at("box"));
    EXPECT_EQ(box, want) << c.dump();
  }
}

TEST(ResizedCrop, RandomBoxesFitAndFollowScaleAndRatio) {
  Rng rng(3);
  for (ImageSize size : {ImageSize{233, 301}, ImageSize{613, 457}, ImageSize{5, 7}}) {
    double area_sum = 0;
    const int kDraws = 2000;
    for (int k = 0; k < kDraws; ++k) {
      const CropBox b = sample_resized_crop_box(size, {0.08, 1.0}, {3.0 / 4, 4.0 / 3}, rng);
      ASSERT_TRUE(b.top >= 0 && b.left >= 0 && b.height > 0 && b.width > 0 &&
                  b.top + b.height <= size.height && b.left + b.width <= size.width);
      area_sum += double(b.height * b.width) / double(size.height * size.width);
    }
    if (size.height > 100) {
      // Area fractions uniform on (0.08, 1) would average 0.54; large boxes that do not
      // fit are drawn again, which lowers it (0.43 to 0.46 here).
      EXPECT_GT(area_sum / kDraws, 0.38) << size.height << "x" << size.width;
      EXPECT_LT(area_sum / kDraws, 0.54) << size.height << "x" << size.width;
    }
  }
}

TEST(ResizedCrop, ReducedDecodeKeepsTheBoxAtLeastTheOutputSize) {
  const ImageSize full{1000, 800};
  const CropBox box{100, 100, 600, 500};
  EXPECT_EQ(reduced_decode_denominator(full, box, 224, 224), 2);  // 300x250 at 1/2, 150 at 1/4
  EXPECT_EQ(reduced_decode_denominator(full, box, 60, 60), 8);
  EXPECT_EQ(reduced_decode_denominator(full, box, 500, 500), 1);
  EXPECT_EQ(map_box(box, full, {500, 400}), (CropBox{50, 50, 300, 250}));
  EXPECT_EQ(map_box(box, full, full), box);
  // Edges round to the nearest pixel of the reduced image; a box keeps at least one pixel.
  EXPECT_EQ(map_box({3, 5, 1, 1}, {9, 9}, {2, 2}), (CropBox{1, 1, 1, 1}));
  EXPECT_THROW(resized_crop(std::vector<uint8_t>(12).data(), {1, 3, 4}, {1, 1, 3, 1}, 2, 2), Error);
}

class SampleTransformTest : public ::testing::Test {
 protected:
  // A folder of PNGs of different sizes (two classes), opened as a variable-size dataset.
  std::shared_ptr<const Dataset> folder() {
    const std::vector<ImageShape> shapes = {{3, 40, 31}, {3, 17, 66}, {3, 50, 50}, {3, 9, 12}};
    for (size_t i = 0; i < shapes.size(); ++i) {
      const ImageShape s = shapes[i];
      std::vector<uint8_t> px(static_cast<size_t>(s.numel()));
      for (int64_t p = 0; p < s.numel(); ++p)
        px[static_cast<size_t>(p)] = testing::test_pixel(int64_t(i), p);
      const fs::path path =
          dir_.path() / "train" / (i % 2 ? "b" : "a") / (std::to_string(i) + ".png");
      fs::create_directories(path.parent_path());
      write_png(path.string(), px.data(), s);
      paths_.push_back(path.string());
    }
    fs::create_directories(dir_.path() / "val" / "a");
    fs::create_directories(dir_.path() / "val" / "b");
    fs::copy_file(paths_[0], dir_.path() / "val" / "a" / "x.png");
    FolderOptions o;
    o.mixed_sizes = true;
    return open_image_folder(dir_.path().string(), o).train;
  }
  testing::TempDir dir_;
  std::vector<std::string> paths_;
};

TEST_F(SampleTransformTest, RandomResizedCropIsTheDrawnBoxResized) {
  auto ds = folder();
  ASSERT_TRUE(ds->variable_size());
  EXPECT_EQ(ds->image_shape(), (ImageShape{3, 0, 0}));
  const RandomResizedCrop rrc(24);
  EXPECT_EQ(rrc.output_shape(3), (ImageShape{3, 24, 24}));
  for (int64_t i = 0; i < ds->size(); ++i) {
    Rng a = Rng::derive(5, 1, 2, uint64_t(i)), b = a;
    const Tensor got = rrc.apply(*ds, i, a);
    const Pixels px = ds->read_pixels(i);
    EXPECT_EQ(ds->image_size(i), (ImageSize{px.shape.height, px.shape.width}));
    const CropBox box = sample_resized_crop_box(ds->image_size(i), {0.08, 1.0}, {0.75, 4.0 / 3}, b);
    const std::vector<uint8_t> want = resized_crop(px.bytes.data(), px.shape, box, 24, 24);
    ASSERT_EQ(got.shape(), (Shape{3, 24, 24}));
    for (int64_t k = 0; k < got.numel(); ++k) ASSERT_EQ(got.f32()[k], want[size_t(k)] / 255.0f);
    EXPECT_EQ(a.next_u64(), b.next_u64()) << "the same draws";
  }
  EXPECT_NE(rrc.repr().find("RandomResizedCrop(size=(24, 24), scale=(0.08, 1)"), std::string::npos)
      << rrc.repr();
}

TEST_F(SampleTransformTest, ReducedDecodeDrawsTheSameBoxAndStaysClose) {
  // A smooth 480x640 JPEG: a 32-pixel crop of it decodes at 1/2 to 1/8.
  const ImageShape s{3, 480, 640};
  std::vector<uint8_t> px(static_cast<size_t>(s.numel()));
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t y = 0; y < s.height; ++y)
      for (int64_t x = 0; x < s.width; ++x)
        px[size_t((c * s.height + y) * s.width + x)] = uint8_t((x / 3 + y / 2 + 40 * c) % 256);
  for (const char* split : {"train/a", "val/a"}) {
    fs::create_directories(dir_.path() / split);
    write_jpeg((dir_.path() / split / "p.jpg").string(), px.data(), s, 95);
  }
  auto ds = open_image_folder(dir_.path().string()).train;
  const RandomResizedCrop full(32), reduced(32, {0.08, 1.0}, {0.75, 4.0 / 3}, true);
  double diff = 0;
  int64_t count = 0, shrunk = 0;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    Rng a(seed), b(seed), c(seed);
    const Tensor x = full.apply(*ds, 0, a), y = reduced.apply(*ds, 0, b);
    const CropBox box = sample_resized_crop_box({480, 640}, {0.08, 1.0}, {0.75, 4.0 / 3}, c);
    shrunk += reduced_decode_denominator({480, 640}, box, 32, 32) > 1;
    EXPECT_EQ(a.next_u64(), b.next_u64());
    for (int64_t i = 0; i < x.numel(); ++i, ++count) diff += std::fabs(x.f32()[i] - y.f32()[i]);
  }
  EXPECT_EQ(shrunk, 20);
  EXPECT_LT(diff / double(count), 4.0 / 255) << "mean absolute difference";
}

TEST_F(SampleTransformTest, EvaluationCropIsPredictsPreprocessing) {
  auto ds = folder();
  Preprocessing p = imagenet_preprocessing();
  p.resize_shorter = 20;
  p.crop_height = p.crop_width = 16;
  const ResizeCenterCrop eval(p);
  Rng rng(1);
  for (int64_t i = 0; i < ds->size(); ++i) {
    const Tensor ours = eval.apply(*ds, i, rng);
    const Tensor predict = preprocess_image(ds->example_name(i), p);
    ASSERT_EQ(ours.shape(), predict.shape());
    EXPECT_EQ(max_abs_diff(ours, predict), 0.0f) << ds->example_name(i);
  }
}

}  // namespace
}  // namespace resnet::data
