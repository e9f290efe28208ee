#pragma once
// The zoo: MODEL name -> network. Names (DESIGN.md section 3):
//   block:IN,OUT[,STRIDE]   the seed's ResidualBlock
// Further families register here as they arrive.

#include <string>
#include <vector>

#include "resnet/nn/module.h"

namespace resnet::models {

struct ModelOptions {
  int64_t num_classes = 1000;  // classifier outputs (networks with a classifier)
  int64_t in_channels = 3;     // input image channels (networks with a stem)
};

// Builds the named model; throws resnet::Error naming the model and listing the known
// names when it is not one of them.
nn::ModulePtr build(const std::string& name, const ModelOptions& options = {});
// The names build() accepts, patterns included ("block:IN,OUT[,STRIDE]").
std::vector<std::string> known_names();
// Input channel count a model expects (for inputs synthesized by bench and tests).
int64_t expected_in_channels(const std::string& name, const ModelOptions& options = {});

}  // namespace resnet::models
