#include "resnet/data/image_codec.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "codec_detail.h"
#include "exif_orientation.h"
#include "resnet/core/error.h"

namespace resnet::data {

namespace detail {

void check_image_size(const std::string& path, int64_t height, int64_t width) {
  RESNET_CHECK(height > 0 && width > 0,
               path << ": expected a non-empty image, got " << height << "x" << width);
  RESNET_CHECK(height * width <= kMaxImagePixels, path << ": expected at most " << kMaxImagePixels
                                                       << " pixels, got " << height << "x"
                                                       << width);
}

uint64_t bytes_left(std::FILE* file) {
  const long here = std::ftell(file);
  if (here < 0 || std::fseek(file, 0, SEEK_END) != 0) return UINT64_MAX;
  const long end = std::ftell(file);
  std::fseek(file, here, SEEK_SET);
  return end >= here ? static_cast<uint64_t>(end - here) : UINT64_MAX;
}

std::FILE* EncodedSource::open(const char* what) const {
  if (!in_memory) {
    std::FILE* file = std::fopen(name.c_str(), "rb");
    RESNET_CHECK(file != nullptr,
                 name << ": expected a readable " << what << " file, got " << std::strerror(errno));
    return file;
  }
  // fmemopen refuses an empty buffer; the format check has refused one already.
  RESNET_CHECK(size > 0, name << ": expected a " << what << " image, got no bytes");
  // Read-only ("rb"): the stream never writes through the pointer it is given.
  std::FILE* file = fmemopen(const_cast<uint8_t*>(data), size, "rb");
  RESNET_CHECK(file != nullptr, name << ": expected to read " << size << " bytes of a " << what
                                     << " image, got " << std::strerror(errno));
  return file;
}

}  // namespace detail

namespace {

// The format from the first bytes (up to 8 of `got`); `name` names the source in errors.
ImageFormat format_of(const unsigned char* magic, size_t got, const std::string& name) {
  static const unsigned char png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (got >= 8 && std::memcmp(magic, png, 8) == 0) return ImageFormat::png;
  if (got >= 3 && magic[0] == 0xff && magic[1] == 0xd8 && magic[2] == 0xff) {
    return ImageFormat::jpeg;
  }
  char hex[32] = "";
  for (size_t i = 0; i < got && i < 4; ++i) {
    std::snprintf(hex + std::strlen(hex), sizeof hex - std::strlen(hex), "%s%02x", i ? " " : "",
                  magic[i]);
  }
  RESNET_FAIL(name << ": expected a PNG or JPEG image, got "
                   << (got == 0 ? std::string("an empty file")
                                : std::string("a file starting with bytes ") + hex));
}

ImageFormat sniff_format(const detail::EncodedSource& source) {
  if (source.in_memory)
    return format_of(source.data, std::min<size_t>(source.size, 8), source.name);
  const std::string& path = source.name;
  std::error_code ec;
  RESNET_CHECK(!std::filesystem::is_directory(path, ec),
               path << ": expected an image file, got a directory");
  std::ifstream in(path, std::ios::binary);
  RESNET_CHECK(in.is_open(),
               path << ": expected a readable image file, got " << std::strerror(errno));
  unsigned char magic[8] = {};
  in.read(reinterpret_cast<char*>(magic), 8);
  return format_of(magic, static_cast<size_t>(in.gcount()), path);
}

ImageInfo read_info(const detail::EncodedSource& source) {
  const ImageFormat format = sniff_format(source);
  const detail::RawHeader h =
      format == ImageFormat::png ? detail::png_header(source) : detail::jpeg_header(source);
  detail::check_image_size(source.name, h.height, h.width);
  const bool swap = detail::orientation_swaps_axes(h.orientation);
  return ImageInfo{format, swap ? h.width : h.height, swap ? h.height : h.width, h.channels};
}

}  // namespace

ImageInfo read_image_info(const std::string& path) {
  return read_info({path});
}

ImageInfo read_image_info(std::span<const uint8_t> bytes, const std::string& name) {
  return read_info({name, true, bytes.data(), bytes.size()});
}

namespace {

// Pillow's convert("RGB") or convert("L") of an interleaved image with 1 to 4 channels.
std::vector<uint8_t> to_chw(const detail::RawImage& raw, int64_t channels) {
  const size_t plane = static_cast<size_t>(raw.height * raw.width);
  const size_t step = static_cast<size_t>(raw.channels);
  const bool color = raw.channels >= 3;
  std::vector<uint8_t> chw(plane * static_cast<size_t>(channels));
  const uint8_t* src = raw.hwc.data();
  for (size_t p = 0; p < plane; ++p, src += step) {
    if (channels == 3) {
      // Alpha (channel 3, or 1 after gray) is dropped, gray is repeated: Pillow's "RGB".
      chw[p] = src[0];
      chw[plane + p] = color ? src[1] : src[0];
      chw[2 * plane + p] = color ? src[2] : src[0];
    } else if (color) {
      // Pillow's ITU-R 601-2 luma in 16-bit fixed point, rounded (Convert.c, L24).
      chw[p] = static_cast<uint8_t>(
          (src[0] * 19595u + src[1] * 38470u + src[2] * 7471u + 0x8000u) >> 16);
    } else {
      chw[p] = src[0];
    }
  }
  return chw;
}

std::vector<uint8_t> decode(const detail::EncodedSource& source, int64_t channels, ImageInfo* info,
                            const DecodeOptions& options) {
  const std::string& path = source.name;
  RESNET_CHECK(channels == 1 || channels == 3,
               path << ": expected to decode to 1 or 3 channels, got " << channels);
  const int64_t d = options.scale_denom;
  RESNET_CHECK(d == 1 || d == 2 || d == 4 || d == 8,
               path << ": expected a JPEG scale denominator of 1, 2, 4 or 8, got " << d);
  const ImageFormat format = sniff_format(source);
  detail::RawImage raw =
      format == ImageFormat::png ? detail::png_decode(source) : detail::jpeg_decode(source, d);
  detail::apply_orientation(raw, raw.orientation);
  if (info) *info = ImageInfo{format, raw.height, raw.width, raw.file_channels};
  return to_chw(raw, channels);
}

}  // namespace

std::vector<uint8_t> decode_image(const std::string& path, int64_t channels, ImageInfo* info,
                                  const DecodeOptions& options) {
  return decode({path}, channels, info, options);
}

std::vector<uint8_t> decode_image(std::span<const uint8_t> bytes, const std::string& name,
                                  int64_t channels, ImageInfo* info, const DecodeOptions& options) {
  return decode({name, true, bytes.data(), bytes.size()}, channels, info, options);
}

namespace {

std::vector<uint8_t> to_hwc(const std::string& path, const uint8_t* chw, ImageShape shape,
                            int64_t max_channels) {
  RESNET_CHECK(shape.channels >= 1 && shape.channels <= max_channels &&
                   (max_channels == 4 || shape.channels != 2),
               path << ": expected " << (max_channels == 4 ? "1 to 4" : "1 or 3")
                    << " channels to write, got " << shape.str());
  detail::check_image_size(path, shape.height, shape.width);
  const size_t plane = static_cast<size_t>(shape.height * shape.width);
  const size_t c = static_cast<size_t>(shape.channels);
  std::vector<uint8_t> hwc(plane * c);
  for (size_t p = 0; p < plane; ++p) {
    for (size_t k = 0; k < c; ++k) hwc[p * c + k] = chw[k * plane + p];
  }
  return hwc;
}

}  // namespace

void write_png(const std::string& path, const uint8_t* chw, ImageShape shape) {
  std::vector<uint8_t> hwc = to_hwc(path, chw, shape, 4);
  detail::png_encode(path, hwc.data(), shape.height, shape.width, shape.channels);
}

void write_jpeg(const std::string& path, const uint8_t* chw, ImageShape shape, int quality) {
  std::vector<uint8_t> hwc = to_hwc(path, chw, shape, 3);
  detail::jpeg_encode(path, hwc.data(), shape.height, shape.width, shape.channels, quality);
}

}  // namespace resnet::data
