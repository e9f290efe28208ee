#pragma once
// Internal: the per-format halves of image_codec.cpp. Pixels here are interleaved
// [H, W, C] as the libraries produce and consume them.

#include <cstdint>
#include <string>
#include <vector>

#include "resnet/data/image_codec.h"

namespace resnet::data::detail {

struct RawImage {
  int64_t height = 0;
  int64_t width = 0;
  int64_t channels = 0;  // 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA
  std::vector<uint8_t> hwc;
};

ImageInfo png_info(const std::string& path);
RawImage png_decode(const std::string& path);
void png_encode(const std::string& path, const uint8_t* hwc, int64_t height, int64_t width,
                int64_t channels);

ImageInfo jpeg_info(const std::string& path);
RawImage jpeg_decode(const std::string& path);
void jpeg_encode(const std::string& path, const uint8_t* hwc, int64_t height, int64_t width,
                 int64_t channels, int quality);

// Throws unless 0 < height, width and height * width <= kMaxImagePixels.
void check_image_size(const std::string& path, int64_t height, int64_t width);

}  // namespace resnet::data::detail
