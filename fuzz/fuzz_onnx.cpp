// ONNX import (io/onnx.h): the protobuf, the opset, every operator's conversion, then the
// graph's validation and shape inference, which read_onnx runs.
#include "fuzz_support.h"
#include "resnet/core/error.h"
#include "resnet/io/onnx.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  resnet::fuzz::pin_one_thread();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = resnet::fuzz::scratch_file(data, size, ".onnx");
  RESNET_FUZZ_EXPECT_ERRORS(resnet::io::read_onnx(path));
  return 0;
}
