#pragma once
// The zoo: MODEL name -> network. Names (the README's "MODEL names" table):
//   block:IN,OUT[,STRIDE]   the seed's ResidualBlock
//   resnet18 resnet34 resnet50 resnet101 resnet152 wide_resnet50_2 wide_resnet101_2
//   resnext50_32x4d resnext101_32x8d resnext101_64x4d
//                           torchvision 0.14's models, same structure and keys
//   resnet20 resnet32 resnet44 resnet56 resnet110 resnet1202
//                           the paper's CIFAR networks (3 stages of 16/32/64 channels)
//   plain20 plain32 plain44 plain56 plain110
//                           the same without shortcuts

#include <string>
#include <vector>

#include "resnet/nn/module.h"

namespace resnet::models {

struct ModelOptions {
  // Classifier outputs; 0 means the family's own default: 1000 for torchvision's
  // ImageNet networks, 10 for the CIFAR networks.
  int64_t num_classes = 0;
  int64_t in_channels = 3;  // input image channels (networks with a stem)
  // CIFAR networks: 'A' zero-pads the identity when a stage widens (the paper's
  // default), 'B' uses a 1x1 conv + BN projection there.
  char cifar_shortcut = 'A';
  // Start each residual block's last BN at weight 0, so blocks begin as identities.
  bool zero_init_residual = false;
};

// Builds the named model; throws resnet::Error naming the model and listing the known
// names when it is not one of them.
nn::ModulePtr build(const std::string& name, const ModelOptions& options = {});
// The names build() accepts, patterns included ("block:IN,OUT[,STRIDE]").
std::vector<std::string> known_names();
// `options` with every "family default" (0) replaced by the value `name` uses.
ModelOptions resolve_options(const std::string& name, ModelOptions options);
// Input channel count a model expects (for inputs synthesized by bench and tests).
int64_t expected_in_channels(const std::string& name, const ModelOptions& options = {});

}  // namespace resnet::models
