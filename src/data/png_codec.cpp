// PNG through libpng's simplified API, which reports errors in image.message instead of
// longjmp-ing through C++ frames.
#include <png.h>

#include "codec_detail.h"
#include "resnet/core/error.h"
#include "resnet/io/atomic_file.h"

namespace resnet::data::detail {

namespace {

// Opens the header; on failure the message names the file and libpng's reason.
png_image begin_read(const std::string& path) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, path.c_str())) {
    std::string reason = image.message;
    png_image_free(&image);
    RESNET_FAIL(path << ": expected a readable PNG image, got libpng error: " << reason);
  }
  return image;
}

int64_t color_channels(png_uint_32 format) {
  return (format & PNG_FORMAT_FLAG_COLOR) ? 3 : 1;
}

}  // namespace

ImageInfo png_info(const std::string& path) {
  png_image image = begin_read(path);
  ImageInfo info{ImageFormat::png, static_cast<int64_t>(image.height),
                 static_cast<int64_t>(image.width), color_channels(image.format)};
  png_image_free(&image);
  return info;
}

RawImage png_decode(const std::string& path) {
  png_image image = begin_read(path);
  RawImage raw;
  raw.height = image.height;
  raw.width = image.width;
  try {
    check_image_size(path, raw.height, raw.width);
  } catch (...) {
    png_image_free(&image);
    throw;
  }
  // Ask for the file's own channels (keeping alpha) and convert ourselves, as Pillow does,
  // rather than let libpng composite alpha or weigh RGB to gray in linear light.
  const bool alpha = image.format & PNG_FORMAT_FLAG_ALPHA;
  const bool color = image.format & PNG_FORMAT_FLAG_COLOR;
  image.format = color ? (alpha ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB)
                       : (alpha ? PNG_FORMAT_GA : PNG_FORMAT_GRAY);
  image.flags |= PNG_IMAGE_FLAG_16BIT_sRGB;
  raw.channels = PNG_IMAGE_PIXEL_CHANNELS(image.format);
  raw.hwc.resize(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, raw.hwc.data(), 0, nullptr)) {
    std::string reason = image.message;
    png_image_free(&image);
    RESNET_FAIL(path << ": expected a complete PNG image, got libpng error: " << reason);
  }
  return raw;
}

void png_encode(const std::string& path, const uint8_t* hwc, int64_t height, int64_t width,
                int64_t channels) {
  check_image_size(path, height, width);
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(width);
  image.height = static_cast<png_uint_32>(height);
  const png_uint_32 formats[] = {PNG_FORMAT_GRAY, PNG_FORMAT_GA, PNG_FORMAT_RGB, PNG_FORMAT_RGBA};
  image.format = formats[channels - 1];
  png_alloc_size_t size = 0;
  if (!png_image_write_get_memory_size(image, size, 0, hwc, 0, nullptr)) {
    RESNET_FAIL(path << ": expected to encode a PNG image, got libpng error: " << image.message);
  }
  std::string bytes(size, '\0');
  if (!png_image_write_to_memory(&image, bytes.data(), &size, 0, hwc, 0, nullptr)) {
    RESNET_FAIL(path << ": expected to encode a PNG image, got libpng error: " << image.message);
  }
  bytes.resize(size);
  io::write_file_atomic(path, bytes);
}

}  // namespace resnet::data::detail
