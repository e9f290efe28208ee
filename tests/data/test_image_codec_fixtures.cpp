// Decoding against Pillow: every fixture in tests/fixtures/images (written by
// tools/gen_image_fixtures.py) must decode to exactly the bytes Pillow gives for
// ImageOps.exif_transpose(Image.open(f)).convert("L" / "RGB"), at full size and, for JPEGs,
// at the 1/2, 1/4 and 1/8 scales of Pillow's draft() (the same libjpeg-turbo scaled IDCT).
// The one deliberate difference, 16-bit gray PNGs (high byte, where Pillow clips to 255),
// is written into the expected bytes by the generator, which also asserts Pillow's clipping.
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "resnet/core/error.h"
#include "resnet/data/image_codec.h"

namespace resnet::data {
namespace {

std::string image_fixture(const std::string& name) {
  return std::string(RESNET_FIXTURE_DIR) + "/images/" + name;
}

std::vector<uint8_t> from_hex(const std::string& hex) {
  std::vector<uint8_t> bytes(hex.size() / 2);
  for (size_t i = 0; i < bytes.size(); ++i) {
    bytes[i] = static_cast<uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  }
  return bytes;
}

nlohmann::json expected_cases() {
  std::ifstream in(image_fixture("expected.json"));
  EXPECT_TRUE(in.is_open()) << "missing " << image_fixture("expected.json");
  return nlohmann::json::parse(in).at("cases");
}

TEST(ImageCodecFixtures, CoverEveryModeLayoutAndOrientation) {
  std::vector<std::string> names;
  for (const auto& c : expected_cases()) names.push_back(c.at("file").get<std::string>());
  for (const char* needed : {"gray.png",
                             "gray_alpha.png",
                             "rgb.png",
                             "rgba.png",
                             "palette.png",
                             "palette_trns.png",
                             "palette_4bit.png",
                             "gray_2bit.png",
                             "bilevel.png",
                             "gray16.png",
                             "rgb16.png",
                             "interlaced_rgb.png",
                             "interlaced_gray16.png",
                             "gray.jpg",
                             "rgb420.jpg",
                             "progressive.jpg",
                             "cmyk.jpg",
                             "ycck.jpg",
                             "orient1.jpg",
                             "orient2.jpg",
                             "orient3.jpg",
                             "orient4.jpg",
                             "orient5.jpg",
                             "orient6.jpg",
                             "orient7.jpg",
                             "orient8.jpg",
                             "orient1.png",
                             "orient2.png",
                             "orient3.png",
                             "orient4.png",
                             "orient5.png",
                             "orient6.png",
                             "orient7.png",
                             "orient8.png",
                             "orient8_exif_after_idat.png"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), needed), names.end()) << needed;
  }
}

TEST(ImageCodecFixtures, HeaderGivesTheUprightSizeAndColour) {
  for (const auto& c : expected_cases()) {
    const std::string file = c.at("file");
    SCOPED_TRACE(file);
    const ImageInfo info = read_image_info(image_fixture(file));
    EXPECT_EQ(info.format, file.ends_with(".png") ? ImageFormat::png : ImageFormat::jpeg);
    EXPECT_EQ(info.height, c.at("info")[0].get<int64_t>());
    EXPECT_EQ(info.width, c.at("info")[1].get<int64_t>());
    EXPECT_EQ(info.channels, c.at("info")[2].get<int64_t>());
  }
}

TEST(ImageCodecFixtures, DecodeExactlyAsPillow) {
  int checked = 0;
  for (const auto& c : expected_cases()) {
    const std::string file = c.at("file");
    for (const auto& d : c.at("decodes")) {
      const std::string mode = d.at("mode");
      const int64_t scale = d.at("scale");
      SCOPED_TRACE(file + " as " + mode + " at 1/" + std::to_string(scale));
      const int64_t channels = mode == "L" ? 1 : 3;
      ImageInfo info;
      const std::vector<uint8_t> got =
          decode_image(image_fixture(file), channels, &info, DecodeOptions{scale});
      const std::vector<uint8_t> want = from_hex(d.at("hex"));
      EXPECT_EQ(channels, d.at("shape")[0].get<int64_t>());
      EXPECT_EQ(info.height, d.at("shape")[1].get<int64_t>());
      EXPECT_EQ(info.width, d.at("shape")[2].get<int64_t>());
      EXPECT_EQ(info.channels, c.at("info")[2].get<int64_t>());
      ASSERT_EQ(got.size(), want.size());
      size_t differing = 0;
      int max_diff = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        const int diff = std::abs(int{got[i]} - int{want[i]});
        differing += diff != 0;
        max_diff = std::max(max_diff, diff);
      }
      EXPECT_EQ(differing, 0u) << "max abs difference " << max_diff;
      ++checked;
    }
  }
  EXPECT_GT(checked, 100);
}

// An upload's bytes decode as its file does (one decoder path: a memory stream), at every
// scale, and errors name what the caller calls the bytes.
TEST(ImageCodecFixtures, BytesInMemoryDecodeAsTheirFile) {
  int checked = 0;
  for (const auto& c : expected_cases()) {
    const std::string file = c.at("file");
    std::ifstream in(image_fixture(file), std::ios::binary);
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                     std::istreambuf_iterator<char>());
    const ImageInfo from_file = read_image_info(image_fixture(file));
    const ImageInfo from_bytes = read_image_info(bytes, "upload");
    EXPECT_EQ(from_bytes.height, from_file.height) << file;
    EXPECT_EQ(from_bytes.width, from_file.width) << file;
    for (const auto& d : c.at("decodes")) {
      const int64_t channels = d.at("mode") == "L" ? 1 : 3;
      const DecodeOptions options{d.at("scale").get<int64_t>()};
      EXPECT_EQ(decode_image(bytes, "upload", channels, nullptr, options),
                decode_image(image_fixture(file), channels, nullptr, options))
          << file;
      ++checked;
    }
    const std::vector<uint8_t> cut(bytes.begin(),
                                   bytes.begin() + static_cast<long>(bytes.size() / 2));
    try {
      decode_image(cut, "upload", 3);
      ADD_FAILURE() << file << ": half the bytes decoded";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).rfind("upload: ", 0), 0u) << e.what();
    }
  }
  EXPECT_GT(checked, 100);
  try {
    decode_image(std::vector<uint8_t>{}, "upload", 3);
    ADD_FAILURE() << "no bytes decoded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("upload: expected a PNG or JPEG"), std::string::npos);
  }
}

}  // namespace
}  // namespace resnet::data
