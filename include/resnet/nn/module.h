#pragma once
// Module: the base of every layer and network, mirroring torch.nn.Module.
//
// The contract every module keeps:
// - forward(x) checks x's shape, then computes the output. When the module is in
//   training mode, or when gradients are enabled (GradEnabledGuard), it keeps what its
//   backward needs; otherwise it keeps nothing.
// - backward(dy) takes the gradient of the loss with respect to the output of the most
//   recent forward, returns the gradient with respect to its input, and ADDS the
//   parameter gradients into grad() of each parameter (zero_grad() clears them). Then
//   it lets go of what forward kept (release_saved()), as PyTorch frees its graph, so
//   that one step's activations are gone before the next step's are made.
// - Parameters and buffers are registered by name, so that state_dict() yields PyTorch's
//   keys ("layer1.0.conv1.weight") in PyTorch's order: a module's own parameters, then
//   its own buffers, then each child's, recursively, in registration order.
// - to_string() prints exactly what Python's print(module) prints.

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "resnet/tensor/tensor.h"

namespace resnet::nn {

// Whether forward() in eval mode keeps what backward() needs (thread-local, default off),
// like torch.set_grad_enabled for eval-mode gradient checks.
bool grad_enabled();
class GradEnabledGuard {
 public:
  explicit GradEnabledGuard(bool enabled);
  ~GradEnabledGuard();
  GradEnabledGuard(const GradEnabledGuard&) = delete;
  GradEnabledGuard& operator=(const GradEnabledGuard&) = delete;

 private:
  bool previous_;
};

class Module;

// Sees every module's forward as it returns (for layer tables and tracing); set with
// ForwardObserverGuard, thread-local, none by default.
using ForwardObserver =
    std::function<void(Module& module, const Tensor& input, const Tensor& output)>;
class ForwardObserverGuard {
 public:
  explicit ForwardObserverGuard(ForwardObserver observer);
  ~ForwardObserverGuard();
  ForwardObserverGuard(const ForwardObserverGuard&) = delete;
  ForwardObserverGuard& operator=(const ForwardObserverGuard&) = delete;

 private:
  ForwardObserver previous_;
};

struct Parameter {
  Tensor value;
  Tensor grad;  // same shape as value, zero until backward accumulates into it
  // PyTorch's requires_grad: false for a frozen parameter (nn/freeze.h), whose layer then
  // adds nothing into grad and which the optimizer leaves alone.
  bool requires_grad = true;
};

class Module {
 public:
  explicit Module(std::string type_name) : type_name_(std::move(type_name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // PyTorch's class name, as printed ("Conv2d", "ResidualBlock").
  const std::string& type_name() const { return type_name_; }

  Tensor forward(const Tensor& x);
  Tensor backward(const Tensor& grad_output);

  // Recursively sets training mode (train(false) == eval()).
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // True when forward must keep what backward needs.
  bool keeps_for_backward() const { return training_ || grad_enabled(); }

  // Full dotted names, recursive, registration order.
  std::vector<std::pair<std::string, Parameter*>> named_parameters();
  std::vector<std::pair<std::string, Tensor*>> named_buffers();
  // Parameters and buffers in PyTorch's state_dict order.
  std::vector<std::pair<std::string, Tensor*>> state_dict();
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const {
    return children_;
  }
  // Every module below this one (not this one), depth first, with dotted names.
  std::vector<std::pair<std::string, Module*>> named_modules();
  int64_t parameter_count();
  void zero_grad();

  // print(module) in PyTorch.
  std::string to_string() const;

 protected:
  virtual Tensor forward_impl(const Tensor& x) = 0;
  virtual Tensor backward_impl(const Tensor& grad_output) = 0;
  // The text inside the parentheses for a leaf, like torch's extra_repr().
  virtual std::string extra_repr() const { return ""; }
  // Called by train(); modules that cache mode-dependent state override it.
  virtual void on_mode_change() {}
  // Drops what forward kept for backward; called after backward.
  virtual void release_saved() {}

  Parameter& register_parameter(const std::string& name, Tensor value);
  Tensor& register_buffer(const std::string& name, Tensor value);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    children_.emplace_back(name, module);
    return module;
  }
  // A name for messages: the type name (modules do not know their path).
  const std::string& who() const { return type_name_; }

 private:
  std::string type_name_;
  bool training_ = true;
  bool has_forward_ = false;
  std::vector<std::pair<std::string, std::unique_ptr<Parameter>>> parameters_;
  std::vector<std::pair<std::string, std::unique_ptr<Tensor>>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

using ModulePtr = std::shared_ptr<Module>;

}  // namespace resnet::nn
