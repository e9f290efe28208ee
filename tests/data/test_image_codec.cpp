// Image decoding on hostile input: truncated, mislabelled, empty, unreadable and directory
// paths; decompression bombs (declared sizes over the pixel limit, PNG chunks that inflate to
// tens of megabytes, image data far beyond the declared size); malformed EXIF blocks.
// Every refusal is one resnet::Error line naming the file; nothing crashes or allocates what
// a header merely claims. The EXIF expectations are Pillow 9.4's, asserted by
// tools/gen_image_fixtures.py (check_pillow_exif_parsing) on the same blocks.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "data/image_codec_test_util.h"
#include "resnet/data/image_codec.h"

namespace resnet::data {
namespace {

using testing::be_u32;
using testing::deflate_with_zeros;
using testing::gray_scanlines;
using testing::ifd_entry;
using testing::le_bytes;
using testing::png_chunk;
using testing::png_ihdr;
using testing::png_signature;
using testing::read_bytes;
using testing::tiff_le;
using testing::with_app1;
using testing::write_bytes;

class ImageCodecTest : public ::testing::Test {
 protected:
  std::string file(const std::string& name) const { return dir_.file(name); }

  // A 16x16 gray PNG (pixel (y, x) = y * 16 + x) with `before` and `after` its IDAT.
  std::string gray_png(const std::string& name, const std::string& before = "",
                       const std::string& after = "") const {
    const std::string idat = deflate_with_zeros(gray_scanlines(16, 16), 0);
    write_bytes(file(name), png_signature() + png_ihdr(16, 16) + before + png_chunk("IDAT", idat) +
                                after + png_chunk("IEND", ""));
    return file(name);
  }

  static void expect_gray_ramp(const std::string& path) {
    ImageInfo info;
    const std::vector<uint8_t> px = decode_image(path, 1, &info);
    ASSERT_EQ(info.height, 16);
    ASSERT_EQ(info.width, 16);
    for (int i = 0; i < 256; ++i) ASSERT_EQ(px[static_cast<size_t>(i)], i) << i;
  }

  // A 3x5 (H x W) RGB JPEG whose pixels all differ.
  std::string small_jpeg() const {
    std::vector<uint8_t> px(3 * 3 * 5);
    for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i * 17);
    write_jpeg(file("plain.jpg"), px.data(), {3, 3, 5}, 100);
    return read_bytes(file("plain.jpg"));
  }

  // read_image_info's height x width of small_jpeg() with `exif` (after "Exif\0\0").
  std::string oriented_size(const std::string& exif, const char* marker = "Exif\0\0") {
    const std::string path = file("exif.jpg");
    write_bytes(path, with_app1(small_jpeg(), std::string(marker, 6) + exif));
    const ImageInfo info = read_image_info(path);
    return std::to_string(info.height) + "x" + std::to_string(info.width);
  }

  testing::TempDir dir_;
};

const std::string kOrient6 = ifd_entry(0x0112, 3, 1, 6);

TEST_F(ImageCodecTest, NonImagesAreRefusedNamingTheFile) {
  write_bytes(file("page.jpg"), "<html>not found</html>");
  EXPECT_IO_ERROR(decode_image(file("page.jpg"), 3), file("page.jpg"), "expected a PNG or JPEG",
                  "3c 68 74 6d");
  EXPECT_IO_ERROR(read_image_info(file("page.jpg")), file("page.jpg"), "expected a PNG or JPEG");
  write_bytes(file("empty.png"), "");
  EXPECT_IO_ERROR(decode_image(file("empty.png"), 3), file("empty.png"), "an empty file");
  std::filesystem::create_directories(file("folder.jpg"));
  EXPECT_IO_ERROR(decode_image(file("folder.jpg"), 3), file("folder.jpg"), "got a directory");
  EXPECT_IO_ERROR(read_image_info(file("folder.jpg")), file("folder.jpg"), "got a directory");
  EXPECT_IO_ERROR(decode_image(file("missing.png"), 3), file("missing.png"),
                  "No such file or directory");
  write_bytes(file("junk.jpg"), "\xff\xd8\xff\xe0 this is no JPEG");
  EXPECT_IO_ERROR(decode_image(file("junk.jpg"), 3), file("junk.jpg"), "libjpeg");
  write_bytes(file("junk.png"), png_signature() + "garbage");
  EXPECT_IO_ERROR(decode_image(file("junk.png"), 3), file("junk.png"), "readable PNG", "libpng");
}

TEST_F(ImageCodecTest, UnreadableFileIsRefusedNamingTheFile) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads files whatever their permissions";
  const std::string path = gray_png("secret.png");
  ASSERT_EQ(::chmod(path.c_str(), 0), 0);
  EXPECT_IO_ERROR(decode_image(path, 1), path, "Permission denied");
  EXPECT_IO_ERROR(read_image_info(path), path, "Permission denied");
}

TEST_F(ImageCodecTest, TruncatedFilesAreRefusedNamingTheFile) {
  const std::string png = gray_png("cut.png");
  const std::string bytes = read_bytes(png);
  write_bytes(png, bytes.substr(0, 20));  // inside IHDR
  EXPECT_IO_ERROR(read_image_info(png), png, "readable PNG image", "libpng");
  write_bytes(png, bytes.substr(0, bytes.size() - 30));  // inside the image data
  EXPECT_EQ(read_image_info(png).height, 16);
  EXPECT_IO_ERROR(decode_image(png, 1), png, "complete PNG image", "libpng");

  std::vector<uint8_t> noise(3 * 32 * 32);
  for (size_t i = 0; i < noise.size(); ++i) noise[i] = static_cast<uint8_t>(i * 7919 >> 3);
  const std::string jpeg = file("cut.jpg");
  write_jpeg(jpeg, noise.data(), {3, 32, 32});
  const std::string jbytes = read_bytes(jpeg);
  write_bytes(jpeg, jbytes.substr(0, jbytes.size() / 2));
  EXPECT_IO_ERROR(decode_image(jpeg, 3, nullptr, DecodeOptions{2}), jpeg, "libjpeg",
                  "Premature end");
}

TEST_F(ImageCodecTest, DeclaredSizeOverThePixelLimitIsRefusedBeforeDecoding) {
  // 20000 x 20000 = 4e8 pixels, over Pillow's 178956970; the files are a few bytes long, so
  // any attempt to allocate or decode would show as a different error.
  const std::string png = file("huge.png");
  write_bytes(png, png_signature() + png_ihdr(20000, 20000) +
                       png_chunk("IDAT", deflate_with_zeros("", 20001)) + png_chunk("IEND", ""));
  EXPECT_IO_ERROR(read_image_info(png), png, "at most 178956970 pixels", "20000x20000");
  EXPECT_IO_ERROR(decode_image(png, 3), png, "at most 178956970 pixels", "20000x20000");

  std::string jpeg_bytes = small_jpeg();
  const size_t sof = jpeg_bytes.find("\xff\xc0");
  ASSERT_NE(sof, std::string::npos);
  for (size_t i : {sof + 5, sof + 7}) {  // height, then width, big-endian
    jpeg_bytes[i] = static_cast<char>(20000 >> 8);
    jpeg_bytes[i + 1] = static_cast<char>(20000 & 0xff);
  }
  const std::string jpeg = file("huge.jpg");
  write_bytes(jpeg, jpeg_bytes);
  EXPECT_IO_ERROR(read_image_info(jpeg), jpeg, "at most 178956970 pixels", "20000x20000");
  EXPECT_IO_ERROR(decode_image(jpeg, 3), jpeg, "at most 178956970 pixels");
  EXPECT_IO_ERROR(decode_image(jpeg, 3, nullptr, DecodeOptions{8}), jpeg, "at most 178956970");
}

TEST_F(ImageCodecTest, ASmallFileDeclaringAHugeImageIsRefusedBeforeAllocating) {
  // 13000 x 13000 is under the pixel limit, but 500 MB of pixels cannot come out of a file
  // of a hundred bytes (deflate: at most 1032:1; Huffman-coded JPEG: one bit per MCU).
  const std::string png = file("bomb.png");
  write_bytes(png, png_signature() + png_ihdr(13000, 13000, 2) +
                       png_chunk("IDAT", deflate_with_zeros("", 10)) + png_chunk("IEND", ""));
  EXPECT_EQ(read_image_info(png).width, 13000);
  EXPECT_IO_ERROR(decode_image(png, 3), png, "complete PNG image",
                  "a 13000x13000 image needs at least 491", "the file has");

  std::string jpeg_bytes = small_jpeg();
  const size_t sof = jpeg_bytes.find("\xff\xc0");
  ASSERT_NE(sof, std::string::npos);
  for (size_t i : {sof + 5, sof + 7}) {
    jpeg_bytes[i] = static_cast<char>(13000 >> 8);
    jpeg_bytes[i + 1] = static_cast<char>(13000 & 0xff);
  }
  const std::string jpeg = file("bomb.jpg");
  write_bytes(jpeg, jpeg_bytes);
  EXPECT_EQ(read_image_info(jpeg).height, 13000);
  EXPECT_IO_ERROR(decode_image(jpeg, 3), jpeg, "a 13000x13000 image needs at least");
  EXPECT_IO_ERROR(decode_image(jpeg, 1, nullptr, DecodeOptions{8}), jpeg, "needs at least");
}

TEST_F(ImageCodecTest, PngAncillaryChunksThatInflateToMegabytesAreNeverInflated) {
  // zTXt and iCCP whose streams inflate to 64 MB each (about 65 KB on disk), and an iTXt.
  const std::string text =
      png_chunk("zTXt", std::string("Comment\0\0", 9) + deflate_with_zeros("bomb", 64u << 20));
  const std::string icc =
      png_chunk("iCCP", std::string("icc\0\0", 5) + deflate_with_zeros("", 64u << 20));
  const std::string itxt = png_chunk(
      "iTXt", std::string("XML:com.adobe.xmp\0\1\0\0\0", 22) + deflate_with_zeros("", 64u << 20));
  const std::string path = gray_png("bomb.png", text + icc, itxt);
  EXPECT_LT(std::filesystem::file_size(path), 250000u);
  EXPECT_EQ(read_image_info(path).width, 16);
  expect_gray_ramp(path);
}

TEST_F(ImageCodecTest, PngChunkLengthsThatRunPastTheFileAreRefusedWithoutAllocating) {
  // A text chunk that claims 9 MB and an IDAT that claims 100 MB for a 16x16 image, in
  // files of a few hundred bytes: libpng skips or reads such chunks in small pieces, so
  // nothing of the claimed size is allocated, and the file ends early.
  const std::string text = be_u32(9000000) + "tEXt" + "Comment";
  const std::string big_text = gray_png("text.png", text);
  EXPECT_IO_ERROR(read_image_info(big_text), big_text, "readable PNG", "libpng", "Read Error");
  const std::string idat = file("idat.png");
  write_bytes(idat, png_signature() + png_ihdr(16, 16) + be_u32(100000000) + "IDAT" + "x");
  EXPECT_EQ(read_image_info(idat).width, 16);
  EXPECT_IO_ERROR(decode_image(idat, 1), idat, "complete PNG", "libpng", "Read Error");
}

TEST_F(ImageCodecTest, PngImageDataFarBeyondTheDeclaredSizeIsNotInflated) {
  // 16 rows the header declares, then 64 MB more of zero rows in chunks of 8 KB: libpng
  // inflates what the image needs and stops.
  const std::string stream = deflate_with_zeros(gray_scanlines(16, 16), 64u << 20);
  std::string chunks;
  for (size_t at = 0; at < stream.size(); at += 8192) {
    chunks += png_chunk("IDAT", stream.substr(at, 8192));
  }
  const std::string path = file("long.png");
  write_bytes(path, png_signature() + png_ihdr(16, 16) + chunks + png_chunk("IEND", ""));
  expect_gray_ramp(path);
}

TEST_F(ImageCodecTest, ScaleDenominatorMustBeOneTwoFourOrEight) {
  const std::string png = gray_png("ramp.png");
  for (int64_t bad : {0, 3, 16, -2}) {
    EXPECT_IO_ERROR(decode_image(png, 1, nullptr, DecodeOptions{bad}), png,
                    "scale denominator of 1, 2, 4 or 8", "got " + std::to_string(bad));
  }
  ImageInfo info;
  decode_image(png, 1, &info, DecodeOptions{4});  // PNG: full size whatever the scale
  EXPECT_EQ(info.height, 16);
  EXPECT_EQ(info.width, 16);
  write_bytes(file("small.jpg"), small_jpeg());  // 3x5
  for (auto [d, h, w] : {std::tuple{1, 3, 5}, {2, 2, 3}, {4, 1, 2}, {8, 1, 1}}) {
    const std::vector<uint8_t> px = decode_image(file("small.jpg"), 3, &info, DecodeOptions{d});
    EXPECT_EQ(info.height, h) << d;
    EXPECT_EQ(info.width, w) << d;
    EXPECT_EQ(px.size(), static_cast<size_t>(3 * h * w)) << d;
  }
  EXPECT_EQ(read_image_info(file("small.jpg")).width, 5);
}

TEST_F(ImageCodecTest, ExifOrientationTurnsTheImageAndItsSize) {
  EXPECT_EQ(oriented_size(tiff_le({kOrient6})), "5x3");
  // The pixels: orientation 6 is Pillow's ROTATE_270, a quarter turn clockwise.
  write_bytes(file("plain.jpg"), small_jpeg());
  const std::vector<uint8_t> plain = decode_image(file("plain.jpg"), 3);
  ImageInfo info;
  const std::vector<uint8_t> turned = decode_image(file("exif.jpg"), 3, &info);
  ASSERT_EQ(info.height, 5);
  ASSERT_EQ(info.width, 3);
  for (int c = 0; c < 3; ++c) {
    for (int y = 0; y < 5; ++y) {
      for (int x = 0; x < 3; ++x) {
        EXPECT_EQ(turned[static_cast<size_t>(c * 15 + y * 3 + x)],
                  plain[static_cast<size_t>(c * 15 + (2 - x) * 5 + y)]);
      }
    }
  }
}

TEST_F(ImageCodecTest, ExifParsedAsPillowParsesIt) {
  const std::string orient3 = ifd_entry(0x0112, 3, 1, 3);
  // Pillow reads the first IFD's entries in order; the last Orientation counts.
  EXPECT_EQ(oriented_size(tiff_le({kOrient6, orient3})), "3x5");
  EXPECT_EQ(oriented_size(tiff_le({orient3, kOrient6})), "5x3");
  // Any number type whose first value equals 2..8 counts: LONG, SSHORT, RATIONAL 12/2.
  EXPECT_EQ(oriented_size(tiff_le({ifd_entry(0x0112, 4, 1, 6)})), "5x3");
  EXPECT_EQ(oriented_size(tiff_le({ifd_entry(0x0112, 8, 1, 6)})), "5x3");
  EXPECT_EQ(oriented_size(tiff_le({ifd_entry(0x0112, 5, 1, 26)}) + le_bytes<uint32_t>(12) +
                          le_bytes<uint32_t>(2)),
            "5x3");
  EXPECT_EQ(oriented_size(tiff_le({ifd_entry(0x0112, 5, 1, 26)}) + le_bytes<uint32_t>(13) +
                          le_bytes<uint32_t>(2)),
            "3x5");  // 6.5
  // Bytes and text are no numbers to Pillow; 0 and 9 are no orientations.
  EXPECT_EQ(oriented_size(tiff_le({ifd_entry(0x0112, 1, 1, 6)})), "3x5");
  EXPECT_EQ(oriented_size(tiff_le({ifd_entry(0x0112, 2, 2, '6')})), "3x5");
  EXPECT_EQ(oriented_size(tiff_le({ifd_entry(0x0112, 3, 1, 9)})), "3x5");
  EXPECT_EQ(oriented_size(tiff_le({ifd_entry(0x0112, 3, 1, 0)})), "3x5");
  // Several SHORTs: the first one (here at offset 26, after the IFD).
  EXPECT_EQ(
      oriented_size(tiff_le({ifd_entry(0x0112, 3, 3, 26)}) + std::string("\x06\0\x01\0\x01\0", 6)),
      "5x3");
}

TEST_F(ImageCodecTest, MalformedExifMeansNoOrientation) {
  // The IFD count claims 1000 entries: those present stand (Pillow warns and keeps them).
  EXPECT_EQ(oriented_size(tiff_le({kOrient6}, 1000)), "5x3");
  // An entry whose data lies outside the block ends the scan; entries before it stand.
  const std::string outside = ifd_entry(0x010e, 2, 100, 0xfffffff0u);
  EXPECT_EQ(oriented_size(tiff_le({kOrient6, outside})), "5x3");
  EXPECT_EQ(oriented_size(tiff_le({outside, kOrient6})), "3x5");
  EXPECT_EQ(oriented_size(tiff_le({ifd_entry(0x0112, 3, 0x40000000u, 8)})), "3x5");
  // The IFD offset beyond the block, a bad byte-order mark, a short block, an empty block.
  std::string far = tiff_le({kOrient6});
  far[4] = '\x7f';
  EXPECT_EQ(oriented_size(far), "3x5");
  std::string bad_order = tiff_le({kOrient6});
  bad_order[0] = bad_order[1] = 'X';
  EXPECT_EQ(oriented_size(bad_order), "3x5");
  EXPECT_EQ(oriented_size(tiff_le({kOrient6}).substr(0, 7)), "3x5");
  EXPECT_EQ(oriented_size(""), "3x5");
  // Pillow takes the first APP1 that starts with "Exif\0"; its sixth byte must be 0 too.
  EXPECT_EQ(oriented_size(tiff_le({kOrient6}), "Exif\0X"), "3x5");
  const std::string twice =
      with_app1(with_app1(small_jpeg(), std::string("Exif\0\0", 6) + tiff_le({kOrient6})),
                std::string("Exif\0\0", 6) + tiff_le({ifd_entry(0x0112, 3, 1, 1)}));
  write_bytes(file("twice.jpg"), twice);  // the upright block comes first in the file
  EXPECT_EQ(read_image_info(file("twice.jpg")).width, 5);
}

TEST_F(ImageCodecTest, PngExifChunkAnywhereTheLastOneCounts) {
  const std::string exif6 = png_chunk("eXIf", tiff_le({kOrient6}));
  const std::string exif1 = png_chunk("eXIf", tiff_le({ifd_entry(0x0112, 3, 1, 1)}));
  EXPECT_EQ(read_image_info(gray_png("before.png", exif6)).height, 16);  // square: same size
  ImageInfo info;
  const std::vector<uint8_t> px = decode_image(gray_png("after.png", "", exif6), 1, &info);
  EXPECT_EQ(px[0], 15 * 16);  // turned clockwise: the bottom-left pixel is now top-left
  EXPECT_EQ(decode_image(gray_png("both.png", exif6, exif1), 1)[0], 0);
  // A chunk whose length runs past the end of the file ends the walk harmlessly.
  const std::string lying = be_u32(0x7fffffff) + "eXIf";
  EXPECT_EQ(decode_image(gray_png("lying.png", exif6, lying), 1)[0], 15 * 16);
}

}  // namespace
}  // namespace resnet::data
