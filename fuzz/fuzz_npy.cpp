// .npy files (io/npy.h): the header's dict, dtypes and shapes against the data that is there,
// read both as f32 and as i64.
#include "fuzz_support.h"
#include "resnet/core/error.h"
#include "resnet/io/npy.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  resnet::fuzz::pin_one_thread();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = resnet::fuzz::scratch_file(data, size, ".npy");
  RESNET_FUZZ_EXPECT_ERRORS(resnet::io::read_npy(path, resnet::io::NpyIntegers::to_f32));
  RESNET_FUZZ_EXPECT_ERRORS(resnet::io::read_npy(path, resnet::io::NpyIntegers::to_i64));
  return 0;
}
