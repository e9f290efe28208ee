#pragma once
// What `resnet serve` is told on its command line (src/cli/serve.cpp documents each).

#include <cstdint>
#include <string>
#include <vector>

#include "resnet/models/zoo.h"

namespace resnet::serve {

struct ServeOptions {
  std::vector<std::string> models;  // [NAME=]MODEL
  std::string dtype;                // f32, bf16, int8; empty: int8 for a quantized checkpoint
  std::string preprocess;           // classify's: imagenet, checkpoint, none; empty: predict's
  int64_t size = 0;                 // input size of models that fix none; 0: 224
  std::string host = "127.0.0.1";
  int port = 8000;
  int64_t max_batch = 16;
  double max_delay_ms = 2;
  int64_t max_queue = 256;
  int64_t timeout_ms = 10000;
  double max_body_mb = 16;
  int threads = 0;       // compute threads; 0: the library's default
  int connections = 64;  // HTTP threads: connections served at once
  bool log_requests = false;
  models::ModelOptions model_options;
};

}  // namespace resnet::serve
