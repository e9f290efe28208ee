// .safetensors files (io/safetensors.h), then what is built on them: a checkpoint's metadata
// (train/checkpoint_info.h) and the strict state_dict loader (io/checkpoint.h) into a small
// network of Linear(4, 3) and BatchNorm2d(3), whose keys the seeds hold.
#include "fuzz_support.h"
#include "resnet/core/error.h"
#include "resnet/io/checkpoint.h"
#include "resnet/io/safetensors.h"
#include "resnet/nn/batchnorm2d.h"
#include "resnet/nn/linear.h"
#include "resnet/nn/sequential.h"
#include "resnet/train/checkpoint_info.h"

namespace {

resnet::nn::Module& small_network() {
  static auto net = [] {
    auto s = std::make_shared<resnet::nn::Sequential>();
    s->push_back(std::make_shared<resnet::nn::Linear>(4, 3));
    s->push_back(std::make_shared<resnet::nn::BatchNorm2d>(3));
    return s;
  }();
  return *net;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  resnet::fuzz::pin_one_thread();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = resnet::fuzz::scratch_file(data, size, ".safetensors");
  try {
    const resnet::io::SafetensorsFile file = resnet::io::read_safetensors(path);
    if (!file.metadata.empty())
      RESNET_FUZZ_EXPECT_ERRORS(resnet::train::CheckpointInfo::from_metadata(file.metadata, path));
  } catch (const resnet::Error&) {
    return 0;
  }
  RESNET_FUZZ_EXPECT_ERRORS(resnet::io::load_state_dict(small_network(), path, "fuzz"));
  return 0;
}
