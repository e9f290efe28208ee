#include "resnet/data/scaled_decode.h"

#include "resnet/core/error.h"

namespace resnet::data {

std::vector<uint8_t> decode_image_scaled(const std::string& path, int64_t channels,
                                         int64_t scale_denom, ImageInfo* info) {
  RESNET_CHECK(
      scale_denom == 1 || scale_denom == 2 || scale_denom == 4 || scale_denom == 8,
      path << ": expected a decoding scale of 1/1, 1/2, 1/4 or 1/8, got 1/" << scale_denom);
  // The codec decodes at full size; callers use the size reported in `info`.
  return decode_image(path, channels, info);
}

}  // namespace resnet::data
