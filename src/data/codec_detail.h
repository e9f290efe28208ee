#pragma once
// Internal: the per-format halves of image_codec.cpp. Pixels here are interleaved
// [H, W, C] as the libraries produce and consume them.

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "resnet/data/image_codec.h"

namespace resnet::data::detail {

// A file's header as stored: the size before orientation, and the EXIF orientation (1 to 8)
// still to be applied.
struct RawHeader {
  int64_t height = 0;
  int64_t width = 0;
  int64_t channels = 0;  // 1 (gray) or 3 (colour), as in ImageInfo
  int orientation = 1;
};

struct RawImage {
  int64_t height = 0;
  int64_t width = 0;
  int64_t channels = 0;  // 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA
  std::vector<uint8_t> hwc;
  int orientation = 1;        // EXIF orientation not yet applied
  int64_t file_channels = 0;  // RawHeader::channels
};

// Where encoded bytes come from: the file `name`, or `size` bytes at `data` held in memory
// (an upload), which `name` then stands for in errors. Both are read through one stdio
// stream, so the decoders have one path whatever the source.
struct EncodedSource {
  std::string name;
  bool in_memory = false;  // false: read the file `name`
  const uint8_t* data = nullptr;
  size_t size = 0;
  // The stream (fmemopen for bytes); throws naming the source, with `what` ("PNG",
  // "JPEG", "image") the kind of file expected.
  std::FILE* open(const char* what) const;
};

RawHeader png_header(const EncodedSource& source);
RawImage png_decode(const EncodedSource& source);
void png_encode(const std::string& path, const uint8_t* hwc, int64_t height, int64_t width,
                int64_t channels);

RawHeader jpeg_header(const EncodedSource& source);
// `scale_denom` is 1, 2, 4 or 8 (checked by the caller).
RawImage jpeg_decode(const EncodedSource& source, int64_t scale_denom);
void jpeg_encode(const std::string& path, const uint8_t* hwc, int64_t height, int64_t width,
                 int64_t channels, int quality);

// The bytes from the stream's position to its end (the position is kept): what the image
// data can at most be, against which a header's size is checked before pixels are
// allocated, so that a small file cannot make the decoder allocate for a huge image.
uint64_t bytes_left(std::FILE* file);

// Throws unless 0 < height, width and height * width <= kMaxImagePixels.
void check_image_size(const std::string& path, int64_t height, int64_t width);

}  // namespace resnet::data::detail
