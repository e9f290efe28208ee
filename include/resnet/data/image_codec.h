#pragma once
// Reading and writing PNG (libpng) and JPEG (libjpeg-turbo) images as 8-bit [C, H, W].
//
// The format is decided by the file's first bytes, not its extension. Decoded images have
// 1 (grayscale) or 3 (RGB) channels, converted as Pillow's convert("L") / convert("RGB")
// do, so that a torchvision ImageFolder pipeline sees the same pixels: alpha is dropped,
// gray is repeated into R, G and B, and RGB becomes L = (19595 R + 38470 G + 7471 B +
// 32768) >> 16. 16-bit PNGs without colour information are taken as sRGB and reduced to
// 8 bits. Truncated or corrupt data, CMYK JPEGs and images over kMaxImagePixels are refused
// with a one-line resnet::Error that names the file.

#include <cstdint>
#include <string>
#include <vector>

#include "resnet/data/dataset.h"

namespace resnet::data {

enum class ImageFormat { png, jpeg };

// Pillow's decompression-bomb limit: images larger than this are refused before decoding.
constexpr int64_t kMaxImagePixels = 178956970;

struct ImageInfo {
  ImageFormat format = ImageFormat::png;
  int64_t height = 0;
  int64_t width = 0;
  int64_t channels = 0;  // 1 (gray) or 3 (colour); an alpha channel is not counted
};

// Reads only the header.
ImageInfo read_image_info(const std::string& path);

// Decodes `path` into channels x H x W bytes; `channels` is 1 or 3 (converted as above).
// When `info` is given it receives the file's own header.
std::vector<uint8_t> decode_image(const std::string& path, int64_t channels,
                                  ImageInfo* info = nullptr);

// Write `chw` (shape.numel() bytes) atomically. PNG takes 1 (gray), 2 (gray + alpha),
// 3 (RGB) or 4 (RGBA) channels; JPEG 1 or 3.
void write_png(const std::string& path, const uint8_t* chw, ImageShape shape);
void write_jpeg(const std::string& path, const uint8_t* chw, ImageShape shape, int quality = 95);

}  // namespace resnet::data
