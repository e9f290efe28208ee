#pragma once
// Ema: an exponential moving average of a network's weights, as timm's ModelEmaV2 keeps
// it: after every optimizer step, for each state_dict entry (parameters and buffers)
//   ema = decay * ema + (1 - decay) * value      (in f32, scalars rounded to f32)
// Integer buffers (num_batches_tracked) are copied rather than averaged. The average
// lives in a second network of the same architecture (module()), so that it can be
// evaluated and saved like the trained one; it starts as a copy of the network.
//
// State: state_tensors() names the averages "ema.<state_dict key>", for the training
// state file; load_state() reads them back, so a resumed run continues bit-exactly.

#include <string>
#include <utility>
#include <vector>

#include "resnet/nn/module.h"

namespace resnet::train {

class Ema {
 public:
  static constexpr const char* kPrefix = "ema.";

  // shadow: a network built like `model` (same state_dict keys and shapes), which
  // becomes the average; decay in [0, 1).
  Ema(nn::ModulePtr shadow, nn::Module& model, double decay);

  // One update from the network's current state.
  void update(nn::Module& model);

  nn::Module& module() { return *shadow_; }
  double decay() const { return decay_; }

  // ("ema.<key>", tensor) pairs sharing storage with the average.
  std::vector<std::pair<std::string, Tensor>> state_tensors();
  // Replaces the average with the "ema.*" entries of `tensors` (other names ignored).
  // Every key must be present with its shape and dtype; errors name the tensor.
  void load_state(const std::vector<std::pair<std::string, Tensor>>& tensors);

 private:
  nn::ModulePtr shadow_;
  double decay_;
};

}  // namespace resnet::train
