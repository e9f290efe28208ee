// ImageNet-style preprocessing against torchvision: generated PNGs (RGB landscape 301x233,
// RGBA portrait 457x613, grayscale 37x29) through Resize, CenterCrop, ToTensor and
// Normalize, compared with torchvision 0.14 on Pillow 9.4 (tests/fixtures/interop/
// preprocess, tools/gen_interop_fixtures.py). Pillow's antialiased bilinear resize is
// reproduced byte for byte, so the tensors agree exactly, and the test demands that. For
// scale: torchvision's own tensor resize with antialias=True misses Pillow by up to 0.017
// after normalization on these images, and a resize without antialiasing by 1.7 on the
// downscaled portrait.

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "io/io_test_util.h"
#include "resnet/core/error.h"
#include "resnet/data/center_crop.h"
#include "resnet/data/image_codec.h"
#include "resnet/data/label_file.h"
#include "resnet/data/preprocess.h"
#include "resnet/data/resize_antialias.h"
#include "resnet/io/npy.h"

namespace resnet::data {
namespace {

std::string preprocess_fixture(const std::string& name) {
  return std::string(RESNET_FIXTURE_DIR) + "/interop/preprocess/" + name;
}

nlohmann::json cases() {
  std::ifstream in(preprocess_fixture("cases.json"));
  EXPECT_TRUE(in);
  return nlohmann::json::parse(in);
}

// torchvision's tensor for a case: the stored bytes / 255, normalized when the case says so,
// with the same float operations as ToTensor and Normalize (the generator checks that).
Tensor expected_tensor(const nlohmann::json& c, const Preprocessing& imagenet) {
  const Tensor bytes = io::read_npy(preprocess_fixture(c.at("expected_uint8")));
  Tensor t(bytes.shape());
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = bytes.f32()[i] / 255.0f;
  if (c.at("normalize") == "imagenet") normalize(t, imagenet.mean, imagenet.std);
  return t;
}

double largest_difference(const Tensor& a, const Tensor& b) {
  double worst = 0;
  for (int64_t i = 0; i < a.numel(); ++i)
    worst = std::max(worst, std::fabs(double(a.f32()[i]) - double(b.f32()[i])));
  return worst;
}

TEST(Preprocess, MatchesTorchvisionOnGeneratedImages) {
  const Preprocessing imagenet = imagenet_preprocessing();
  const auto all = cases().at("cases");
  ASSERT_EQ(all.size(), 4u);
  for (const auto& c : all) {
    Preprocessing p;
    if (c.at("normalize") == "imagenet") {
      p = imagenet;
    } else {
      p.name = "test";
    }
    p.channels = 3;  // torchvision's loader converts everything to RGB
    p.resize_shorter = c.at("resize").get<int64_t>();
    p.crop_height = c.at("crop")[0].get<int64_t>();
    p.crop_width = c.at("crop")[1].get<int64_t>();
    const std::string image = c.at("image");
    const Tensor ours = preprocess_image(preprocess_fixture(image), p);
    const Tensor want = expected_tensor(c, imagenet);
    ASSERT_EQ(ours.shape(), want.shape()) << image;
    const double diff = largest_difference(ours, want);
    EXPECT_EQ(diff, 0.0) << image << " resize " << p.resize_shorter << " crop " << p.crop_height
                         << "x" << p.crop_width;
    RecordProperty(image + "_max_abs_diff", std::to_string(diff));
  }
}

// The ImageNet recipe itself is torchvision's standard evaluation transform.
TEST(Preprocess, ImagenetRecipeIsTorchvisionsStandard) {
  const Preprocessing p = imagenet_preprocessing();
  EXPECT_EQ(p.resize_shorter, 256);
  EXPECT_EQ(p.crop_height, 224);
  EXPECT_EQ(p.crop_width, 224);
  EXPECT_EQ(p.mean, (std::vector<float>{0.485f, 0.456f, 0.406f}));
  EXPECT_EQ(p.std, (std::vector<float>{0.229f, 0.224f, 0.225f}));
  EXPECT_EQ(p.channels, 3);
  const Tensor t = preprocess_image(preprocess_fixture("landscape_rgb.png"), p);
  EXPECT_EQ(t.shape(), (Shape{3, 224, 224}));
  EXPECT_NE(p.describe().find("resize shorter side to 256"), std::string::npos) << p.describe();
}

TEST(ResizeAntialias, ShorterSideSizeAsTorchvision) {
  // (h, w) -> torchvision's _compute_resized_output_size((h, w), [size]).
  EXPECT_EQ(shorter_side_size(233, 301, 256), (ImageSize{256, 330}));  // int(330.7...)
  EXPECT_EQ(shorter_side_size(613, 457, 256), (ImageSize{343, 256}));
  EXPECT_EQ(shorter_side_size(100, 100, 256), (ImageSize{256, 256}));
  EXPECT_EQ(shorter_side_size(3, 1000, 2), (ImageSize{2, 666}));
  EXPECT_THROW(shorter_side_size(0, 5, 3), Error);
}

TEST(ResizeAntialias, ConstantImageStaysConstantAndSameSizeIsACopy) {
  std::vector<uint8_t> flat(2 * 13 * 17, 77);
  for (auto [h, w] : {std::pair{5, 4}, {30, 41}, {13, 3}}) {
    const auto out = resize_bilinear_antialias(flat.data(), {2, 13, 17}, h, w);
    ASSERT_EQ(out.size(), static_cast<size_t>(2 * h * w));
    for (uint8_t v : out) EXPECT_EQ(v, 77);
  }
  std::vector<uint8_t> ramp(3 * 4 * 5);
  for (size_t i = 0; i < ramp.size(); ++i) ramp[i] = static_cast<uint8_t>(i * 4);
  EXPECT_EQ(resize_bilinear_antialias(ramp.data(), {3, 4, 5}, 4, 5), ramp);
}

TEST(ResizeAntialias, HalvingAveragesPairs) {
  // Shrinking by exactly 2: the widened triangle gives weights 1/4, 3/4, 3/4, 1/4 (the
  // antialiasing) over four source pixels; a plain bilinear resize would read two.
  const std::vector<uint8_t> row = {0, 0, 100, 100, 0, 0, 200, 200};
  const auto out = resize_bilinear_antialias(row.data(), {1, 1, 8}, 1, 4);
  // Output 1 reads pixels 1..4: (0 * 1 + 100 * 3 + 100 * 3 + 0 * 1) / 8 = 75.
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[1], 75);
  EXPECT_EQ(out[0], 14);  // pixels 0..2 (0 is the edge): (0 * 3 + 0 * 3 + 100 * 1) / 7
}

TEST(CenterCrop, OffsetsRoundHalfToEvenAsPython) {
  Tensor image({1, 5, 9});
  for (int64_t i = 0; i < image.numel(); ++i) image.f32()[i] = static_cast<float>(i);
  // Height 5 -> 2: round(1.5) = 2; width 9 -> 2: round(3.5) = 4.
  Tensor out = center_crop(image, 2, 2);
  EXPECT_EQ(out.f32()[0], 2 * 9 + 4);
  // Width 9 -> 4: round(2.5) = 2 (half to even).
  out = center_crop(image, 5, 4);
  EXPECT_EQ(out.f32()[0], 2);
}

TEST(CenterCrop, PadsWithZerosWhenLargerAsTorchvision) {
  Tensor image({2, 3, 4});
  for (int64_t i = 0; i < image.numel(); ++i) image.f32()[i] = 1.0f + static_cast<float>(i);
  // 3x4 -> 6x5: one row above (3 // 2), two below; no column on the left (1 // 2), one on
  // the right.
  const Tensor out = center_crop(image, 6, 5);
  ASSERT_EQ(out.shape(), (Shape{2, 6, 5}));
  for (int64_t x = 0; x < 5; ++x) EXPECT_EQ(out.f32()[x], 0.0f);  // top padding row
  EXPECT_EQ(out.f32()[1 * 5 + 0], 1.0f);                          // image (0, 0)
  EXPECT_EQ(out.f32()[1 * 5 + 3], 4.0f);                          // image (0, 3)
  EXPECT_EQ(out.f32()[1 * 5 + 4], 0.0f);                          // right padding
  EXPECT_EQ(out.f32()[4 * 5 + 0], 0.0f);                          // bottom padding
  // One axis padded, the other cropped: 3x4 -> 5x2 keeps columns 1..2.
  const Tensor mixed = center_crop(image, 5, 2);
  EXPECT_EQ(mixed.f32()[1 * 2 + 0], 2.0f);
  EXPECT_EQ(CenterCrop(224, 224).repr(), "CenterCrop(size=(224, 224))");
}

TEST(LabelFile, ReadsOneNamePerLine) {
  testing::TempDir dir;
  const std::string path = dir.file("labels.txt");
  std::ofstream(path) << "tench\r\ngoldfish\ngreat white shark";
  EXPECT_EQ(read_label_file(path, 3),
            (std::vector<std::string>{"tench", "goldfish", "great white shark"}));
  std::ofstream(path) << "a\nb\n";
  EXPECT_EQ(read_label_file(path).size(), 2u);
}

TEST(LabelFile, RefusesWrongCountEmptyLinesAndMissingFiles) {
  testing::TempDir dir;
  const std::string path = dir.file("labels.txt");
  std::ofstream(path) << "a\nb\n";
  EXPECT_IO_ERROR(read_label_file(path, 3), path, "expected 3", "got 2");
  std::ofstream(path) << "a\n\nb\n";
  EXPECT_IO_ERROR(read_label_file(path, 3), path, "line 2", "empty");
  EXPECT_IO_ERROR(read_label_file(dir.file("none.txt")), "none.txt");
}

}  // namespace
}  // namespace resnet::data
