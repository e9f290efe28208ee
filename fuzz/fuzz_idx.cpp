// IDX files (data/idx.h) as they come, raw or gzip-compressed (a corrupt or lying gzip
// stream included): read as images and as labels.
#include "fuzz_support.h"
#include "resnet/core/error.h"
#include "resnet/data/idx.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  resnet::fuzz::pin_one_thread();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = resnet::fuzz::scratch_file(data, size, "-ubyte");
  RESNET_FUZZ_EXPECT_ERRORS(resnet::data::read_idx_images(path));
  RESNET_FUZZ_EXPECT_ERRORS(resnet::data::read_idx_labels(path));
  return 0;
}
