#pragma once
// Freezing parts of a network for fine-tuning (`resnet train --freeze`).
//
// A spec is a comma-separated list of module paths as state_dict keys spell them
// ("conv1", "bn1", "layer1", "layer3.2", "layer4.0.downsample"), or "backbone": every
// child of the network but its classifier "fc". Every parameter under a named module
// gets requires_grad = false: its layer adds nothing into its grad, the optimizer skips
// it (no weight decay, no momentum buffer), and a BatchNorm2d whose parameters are both
// frozen normalizes with its running statistics, which stay unchanged (batchnorm2d.h).
// A ResNet trained without the input gradient also stops its backward pass below the
// lowest trainable block (resnet.h).

#include <string>
#include <vector>

#include "resnet/nn/module.h"

namespace resnet::nn {

// The module paths a spec names, "backbone" expanded, in the spec's order, duplicates
// dropped. An empty spec names none. Errors (one line): an empty item, or a path that is
// no module of `model` (the message lists the top-level names).
std::vector<std::string> resolve_freeze_spec(Module& model, const std::string& spec);

// Freezes every parameter under the modules `spec` names; returns how many parameter
// tensors are frozen (all of the model's frozen ones, counting earlier calls).
int64_t freeze(Module& model, const std::string& spec);

// Whether the parameter named `name` (a named_parameters() key) lies under `module_path`.
bool is_under(const std::string& name, const std::string& module_path);

}  // namespace resnet::nn
