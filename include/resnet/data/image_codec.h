#pragma once
// Reading and writing PNG (libpng) and JPEG (libjpeg-turbo) images as 8-bit [C, H, W].
//
// The format is decided by the file's first bytes, not its extension. Decoded images have
// 1 (grayscale) or 3 (RGB) channels and the pixels Pillow gives for
// ImageOps.exif_transpose(Image.open(f)).convert("L" or "RGB"), so that a torchvision
// pipeline sees the same bytes:
// - alpha is dropped, gray is repeated into R, G and B, and RGB becomes
//   L = (19595 R + 38470 G + 7471 B + 32768) >> 16 (Pillow's ITU-R 601-2 luma);
// - palette PNGs are looked up (a tRNS transparency is ignored, as convert("RGB") does);
//   gray PNGs of 1, 2 or 4 bits are scaled to 0..255;
// - 16-bit PNGs keep the high byte of each sample (Pillow's "RGB;16B" and "LA;16B"
//   unpacking). Pillow opens a 16-bit gray PNG without alpha as a 32-bit "I" image whose
//   convert("L"/"RGB") clips every value above 255 to 255, so nearly every such photo turns
//   white; we keep the high byte there too (the same as Pillow for all other 16-bit PNGs),
//   a deliberate difference. No gamma, sRGB or ICC colour conversion is applied (neither
//   does Pillow);
// - CMYK and YCCK JPEGs are taken as Adobe-inverted CMYK (as Photoshop writes them, and as
//   Pillow assumes) and converted as Pillow's convert("RGB"): with k = 255 - K,
//   R = k - round(C * k / 255) on Pillow's CMYK values C = 255 - stored (likewise G, B);
// - the EXIF orientation (tag 0x0112 of the first IFD, values 2 to 8) is applied as
//   ImageOps.exif_transpose applies it, from a JPEG's first APP1 "Exif" segment or a PNG's
//   eXIf chunk (the last one, before or after the image data, as Pillow reads it).
//   Torchvision's own ImageFolder loader ignores the orientation; the photo as a viewer
//   shows it is what a model should learn from. A malformed EXIF block means orientation 1.
// Truncated or corrupt data and images over kMaxImagePixels (checked on the declared size,
// before any pixel is allocated) are refused with a one-line resnet::Error that names the
// file. PNG ancillary chunks other than tRNS are skipped unread (never inflated), and PNG
// image data is inflated only as far as the declared rows need.

#include <cstdint>
#include <span>
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

struct DecodeOptions {
  // JPEG only: decode at 1/scale_denom of the full size with libjpeg-turbo's scaled IDCT
  // (1, 2, 4 or 8; anything else is refused). PNG ignores it and decodes at full size.
  int64_t scale_denom = 1;
};

// Reads only the header; returns the full size after EXIF orientation. Refuses an image
// over kMaxImagePixels.
ImageInfo read_image_info(const std::string& path);
// The same for a PNG or JPEG file's bytes held in memory (an upload, say); `name` stands
// for the file in errors ("request body").
ImageInfo read_image_info(std::span<const uint8_t> bytes, const std::string& name);

// Decodes `path` into channels x H x W bytes; `channels` is 1 or 3 (converted as above).
// `info`, when given, receives the DECODED image's size (after orientation and scaling):
// for denominator d a side of n pixels becomes ceil(n / d), as libjpeg computes it.
std::vector<uint8_t> decode_image(const std::string& path, int64_t channels,
                                  ImageInfo* info = nullptr, const DecodeOptions& options = {});
// The same for a file's bytes held in memory, decoded exactly as the file would be;
// `name` stands for the file in errors.
std::vector<uint8_t> decode_image(std::span<const uint8_t> bytes, const std::string& name,
                                  int64_t channels, ImageInfo* info = nullptr,
                                  const DecodeOptions& options = {});

// Write `chw` (shape.numel() bytes) atomically. PNG takes 1 (gray), 2 (gray + alpha),
// 3 (RGB) or 4 (RGBA) channels; JPEG 1 or 3.
void write_png(const std::string& path, const uint8_t* chw, ImageShape shape);
void write_jpeg(const std::string& path, const uint8_t* chw, ImageShape shape, int quality = 95);

}  // namespace resnet::data
