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
// - A module learns its path in the model ("layer3.0.conv1") when it, or a module above
//   it, is registered as a child; errors name that path (who()).
// - Every module that computes something reports its forward to the ForwardObserver,
//   including one whose work another module's kernel did (a ReLU fused into the
//   BatchNorm2d before it): notify_observer().

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
// Whether a ForwardObserver is set (a module whose report costs work only does it then).
bool forward_observed();
class ForwardObserverGuard {
 public:
  explicit ForwardObserverGuard(ForwardObserver observer);
  ~ForwardObserverGuard();
  ForwardObserverGuard(const ForwardObserverGuard&) = delete;
  ForwardObserverGuard& operator=(const ForwardObserverGuard&) = delete;

 private:
  ForwardObserver previous_;
};

// Sees every module's backward as it returns, when that module's parameter gradients (and
// those of the modules below it) are final for this step: data-parallel training starts
// reducing them then, while the layers before it still run. Set with
// BackwardObserverGuard, thread-local, none by default.
using BackwardObserver = std::function<void(Module& module)>;
class BackwardObserverGuard {
 public:
  explicit BackwardObserverGuard(BackwardObserver observer);
  ~BackwardObserverGuard();
  BackwardObserverGuard(const BackwardObserverGuard&) = delete;
  BackwardObserverGuard& operator=(const BackwardObserverGuard&) = delete;

 private:
  BackwardObserver previous_;
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
  // The dotted path from the model's root ("layer3.0.conv1"); empty for the root.
  const std::string& path() const { return path_; }
  // A name for messages: the path, or for the root, label().
  std::string who() const { return path_.empty() ? label() : path_; }
  // Tells the ForwardObserver (if any) that this module ran on `input` giving `output`.
  // Called by forward(), and by a module whose kernel did this module's work as well
  // (BatchNorm2d with a fused ReLU reports the ReLU module's forward too).
  void notify_observer(const Tensor& input, const Tensor& output);

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
  // How messages name a module that has no path (the root): its type, or a module's
  // short description ("Linear(512, 1000)").
  virtual std::string label() const { return type_name_; }
  // Reports this forward to the observer; a module whose kernel fused the next module's
  // work reports both.
  virtual void report_forward(const Tensor& input, const Tensor& output) {
    notify_observer(input, output);
  }
  // Called by train(); modules that cache mode-dependent state override it.
  virtual void on_mode_change() {}
  // Drops what forward kept for backward; called after backward.
  virtual void release_saved() {}
  // The element types forward takes as input and backward as output gradient: f32, and
  // for a module computing in bf16 also bf16 (a tensor a BatchNorm2d wrote for it).
  virtual bool accepts(DType type) const { return type == DType::f32; }

  Parameter& register_parameter(const std::string& name, Tensor value);
  Tensor& register_buffer(const std::string& name, Tensor value);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    children_.emplace_back(name, module);
    module->set_path(path_.empty() ? name : path_ + "." + name);
    return module;
  }

 private:
  // Sets this module's path and, below it, its children's.
  void set_path(const std::string& path);

  std::string type_name_;
  std::string path_;
  bool training_ = true;
  bool has_forward_ = false;
  std::vector<std::pair<std::string, std::unique_ptr<Parameter>>> parameters_;
  std::vector<std::pair<std::string, std::unique_ptr<Tensor>>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

using ModulePtr = std::shared_ptr<Module>;

}  // namespace resnet::nn
