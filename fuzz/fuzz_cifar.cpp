// CIFAR binary batches (data/cifar.h), read as CIFAR-10 and as CIFAR-100 records.
#include "fuzz_support.h"
#include "resnet/core/error.h"
#include "resnet/data/cifar.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  resnet::fuzz::pin_one_thread();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = resnet::fuzz::scratch_file(data, size, ".bin");
  for (auto kind : {resnet::data::CifarKind::cifar10, resnet::data::CifarKind::cifar100}) {
    resnet::data::CifarRecords records;
    RESNET_FUZZ_EXPECT_ERRORS(resnet::data::read_cifar_file(path, kind, records));
  }
  return 0;
}
