// PNG and JPEG decoding (data/image_codec.h) from memory, as resnet serve and the loaders
// decode: the header (with the pixel limit), then the pixels as RGB at full size and as gray
// at a reduced JPEG scale chosen by the input's length.
#include <span>

#include "fuzz_support.h"
#include "resnet/core/error.h"
#include "resnet/data/image_codec.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  resnet::fuzz::pin_one_thread();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  try {
    resnet::data::read_image_info(bytes, "fuzz input");
  } catch (const resnet::Error&) {
    return 0;
  }
  resnet::data::ImageInfo info;
  RESNET_FUZZ_EXPECT_ERRORS(resnet::data::decode_image(bytes, "fuzz input", 3, &info));
  resnet::data::DecodeOptions reduced;
  reduced.scale_denom = int64_t{1} << (size % 4);
  RESNET_FUZZ_EXPECT_ERRORS(resnet::data::decode_image(bytes, "fuzz input", 1, &info, reduced));
  return 0;
}
