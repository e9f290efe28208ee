#pragma once
// What every fuzz target shares: one thread for OpenMP and oneDNN (a fuzzer runs one input
// at a time, and thread start-up would dominate), and the input as a file, for the readers
// that take a path.

#include <cstddef>
#include <cstdint>
#include <string>

namespace resnet::fuzz {

// Pins OpenMP and oneDNN to one thread; call from LLVMFuzzerInitialize.
void pin_one_thread();

// Writes `size` bytes to this process's scratch file (on tmpfs when there is one) and
// returns its path, the same on every call with the same `suffix`. Removed at exit.
const std::string& scratch_file(const uint8_t* data, size_t size, const std::string& suffix = "");

}  // namespace resnet::fuzz

// Runs `body`, swallowing the resnet::Error that bad input is meant to end in; anything
// else (another exception, a crash, a leak) escapes to libFuzzer as a finding.
#define RESNET_FUZZ_EXPECT_ERRORS(body) \
  do {                                  \
    try {                               \
      body;                             \
    } catch (const ::resnet::Error&) {  \
    }                                   \
  } while (0)
