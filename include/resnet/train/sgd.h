#pragma once
// Sgd: torch.optim.SGD (PyTorch 1.13, maximize=False) over named parameters.
//
// One step, for each parameter p with gradient g (its Parameter::grad; a parameter whose
// grad is undefined is skipped, like a None grad in PyTorch), in f32 as PyTorch does:
//   g = g + weight_decay * p                       (when weight_decay != 0 and p decays)
//   if momentum != 0:
//     buf = g                                      (first step: PyTorch clones g)
//     buf = momentum * buf + (1 - dampening) * g   (later steps)
//     g = nesterov ? g + momentum * buf : buf
//   p = p - lr * g
// Options are checked as PyTorch checks them: lr, momentum and weight_decay >= 0, and
// nesterov needs momentum > 0 and dampening == 0.
//
// Weight-decay exemption (decay_bn_and_bias = false): a parameter is exempt when its name
// ends in ".bias" (or is "bias") or its value has rank <= 1. In a ResNet every rank-1
// parameter is a BatchNorm weight or bias or a Linear bias, so this exempts exactly the BN
// parameters and the biases; convolution and Linear weights (rank 4 and 2) still decay.
// It is PyTorch with two param groups, the exempt parameters' one having weight_decay 0.
//
// Frozen parameters (Parameter::requires_grad false, nn/freeze.h) are skipped: no update,
// no weight decay, no momentum buffer, whatever their grad holds.
//
// Learning-rate multipliers (PyTorch's param groups with lr = base * multiplier): each
// parameter steps with lr() * its multiplier (1 unless set_lr_multiplier changed it), so
// a schedule's set_lr scales every group alike.
//
// State: one momentum buffer per trainable parameter, created by its first step with
// momentum != 0.
// state_tensors() names them "momentum_buffer.<parameter name>" so they can be written
// beside the model in one checkpoint; load_state() reads them back (see there).

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "resnet/nn/module.h"

namespace resnet::train {

struct SgdOptions {
  double lr = 0.1;                // learning rate (PyTorch requires it; set_lr changes it)
  double momentum = 0.0;          // 0 = plain SGD, no buffers
  double dampening = 0.0;         // scales the gradient added to the buffer by 1 - dampening
  double weight_decay = 0.0;      // L2 penalty added to the gradient before momentum
  bool nesterov = false;          // Nesterov momentum (needs momentum > 0, dampening 0)
  bool decay_bn_and_bias = true;  // false: rank-1 parameters and biases get no weight decay
};

// The exemption rule above: true for names ending in ".bias" and for values of rank <= 1.
bool is_bn_or_bias(const std::string& name, const Tensor& value);

class Sgd {
 public:
  // The prefix of the state tensors' names.
  static constexpr const char* kBufferPrefix = "momentum_buffer.";

  // params: unique non-empty names (Module::named_parameters()), pointers that outlive this.
  Sgd(std::vector<std::pair<std::string, nn::Parameter*>> params, SgdOptions options);
  // All of model.named_parameters().
  Sgd(nn::Module& model, SgdOptions options);

  // One update of every parameter from its current grad (see the header comment).
  void step();
  // Zeroes every parameter's grad (as PyTorch's zero_grad(set_to_none=False)).
  void zero_grad();

  double lr() const { return options_.lr; }
  // The rate of the next steps (a schedule calls this before each step); lr >= 0, finite.
  void set_lr(double lr);
  const SgdOptions& options() const { return options_; }
  // Whether weight decay applies to the parameter named `name` (false if no such one).
  bool decays(const std::string& name) const;
  // Sets the lr multiplier of the parameter named `name` (finite, >= 0); an unknown name
  // is an error.
  void set_lr_multiplier(const std::string& name, double multiplier);

  // The momentum buffers that exist, in parameter order, as ("momentum_buffer.<name>",
  // buffer) pairs sharing storage with the optimizer (clone to keep a snapshot). Empty
  // before the first step and whenever momentum is 0.
  std::vector<std::pair<std::string, Tensor>> state_tensors() const;
  // Replaces the state with the "momentum_buffer.*" entries of `tensors` (copied); other
  // names are ignored, so a whole checkpoint can be passed. Either no parameter or every
  // trainable parameter must have a buffer (none = a fresh optimizer). Errors, naming the
  // tensor: a buffer of an unknown or frozen parameter, a duplicate, a dtype other than
  // f32, a shape other than the parameter's, a missing buffer. On error the state is left
  // unchanged.
  void load_state(const std::vector<std::pair<std::string, Tensor>>& tensors);

 private:
  struct Slot {
    std::string name;
    nn::Parameter* param;
    bool decays;
    double lr_multiplier = 1.0;
    Tensor momentum_buffer;  // undefined until the first step with momentum
  };
  void update(Slot& slot);

  std::vector<Slot> slots_;
  SgdOptions options_;
};

}  // namespace resnet::train
