#pragma once
// Decoding at a reduced size, for transforms that shrink the image anyway.
//
// JPEG's scaled IDCT decodes at 1/2, 1/4 or 1/8 of the size (ceil(n / d) pixels a side) for
// a fraction of the full decode's work; PNG has no such mode and decodes in full. The
// decoded size is reported in `info`, so callers map their coordinates with the size they
// got, whatever the codec did.

#include <cstdint>
#include <string>
#include <vector>

#include "resnet/data/image_codec.h"

namespace resnet::data {

// decode_image(path, channels, info) at 1/scale_denom (1, 2, 4 or 8) where the format allows.
std::vector<uint8_t> decode_image_scaled(const std::string& path, int64_t channels,
                                         int64_t scale_denom, ImageInfo* info);

}  // namespace resnet::data
