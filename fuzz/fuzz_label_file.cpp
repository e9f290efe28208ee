// Class-name files (data/label_file.h), with and without an expected count.
#include "fuzz_support.h"
#include "resnet/core/error.h"
#include "resnet/data/label_file.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  resnet::fuzz::pin_one_thread();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = resnet::fuzz::scratch_file(data, size, ".txt");
  RESNET_FUZZ_EXPECT_ERRORS(resnet::data::read_label_file(path));
  RESNET_FUZZ_EXPECT_ERRORS(resnet::data::read_label_file(path, 10));
  return 0;
}
