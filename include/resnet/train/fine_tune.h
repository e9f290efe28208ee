#pragma once
// The model and optimizer side of fine-tuning (`resnet train --init --freeze
// --lr-backbone`), as steps of the trainer's setup:
//
//   load_init_weights  --init W.safetensors: a torchvision state_dict (any key order,
//                      F16/BF16/F64 converted) or a checkpoint of ours. When the run's
//                      class count differs from W's classifier, every tensor but "fc.*"
//                      is loaded and fc keeps the network's own initialisation (PyTorch's
//                      nn.Linear default, from the run's seed). Any other mismatch is
//                      refused as strict loading refuses it (io::load_state_dict).
//   apply_freeze       --freeze PREFIXES (nn/freeze.h).
//   apply_lr_backbone  --lr-backbone F: every parameter outside the classifier steps at
//                      F times the schedule's rate.
// Each prints one line saying what it did.

#include <string>

#include "resnet/nn/module.h"
#include "resnet/train/sgd.h"

namespace resnet::train {

// The classifier of every network of the zoo that --init and --lr-backbone treat as new.
inline constexpr const char* kHeadModule = "fc";

// Where a fine-tuned run started: recorded in its checkpoints (CheckpointInfo).
struct InitOrigin {
  std::string file_name;  // the file's name, without its directory
  std::string sha256;     // of the file's bytes
};

InitOrigin load_init_weights(nn::Module& model, const std::string& path,
                             const std::string& model_name);

// Returns the number of frozen parameter tensors; refuses a spec that leaves nothing to
// train.
int64_t apply_freeze(nn::Module& model, const std::string& spec);

void apply_lr_backbone(Sgd& sgd, nn::Module& model, double factor);

}  // namespace resnet::train
