// What `resnet train --resume` reads from its --out directory before any training: config.json
// (TrainConfig::from_json) and last.state.safetensors (the SGD buffers as safetensors, the
// run state in its metadata). The input is the config's text, the separator "\n@@state@@\n",
// then the state file's bytes (no separator: the state file is empty).
#include <string_view>

#include "fuzz_support.h"
#include "resnet/core/error.h"
#include "resnet/io/safetensors.h"
#include "resnet/train/trainer.h"
#include "train/run_state.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  resnet::fuzz::pin_one_thread();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr std::string_view kSeparator = "\n@@state@@\n";
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find(kSeparator);
  const std::string config(input.substr(0, split));
  RESNET_FUZZ_EXPECT_ERRORS(resnet::train::TrainConfig::from_json(config, "config.json"));
  const std::string_view state = split == std::string_view::npos
                                     ? std::string_view()
                                     : input.substr(split + kSeparator.size());
  const std::string& path = resnet::fuzz::scratch_file(
      reinterpret_cast<const uint8_t*>(state.data()), state.size(), ".state.safetensors");
  try {
    const resnet::io::SafetensorsFile file = resnet::io::read_safetensors(path);
    resnet::train::parse_state(file.metadata, path);
  } catch (const resnet::Error&) {
  }
  return 0;
}
