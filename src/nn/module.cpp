#include "resnet/nn/module.h"

#include <sstream>

#include "resnet/core/error.h"

namespace resnet::nn {

namespace {
thread_local bool g_grad_enabled = false;
thread_local ForwardObserver g_forward_observer;
thread_local BackwardObserver g_backward_observer;

// torch.nn.modules.module._addindent: indent every line but the first.
std::string add_indent(const std::string& s, int spaces) {
  std::string out;
  std::string pad(spaces, ' ');
  for (char c : s) {
    out += c;
    if (c == '\n') out += pad;
  }
  return out;
}
}  // namespace

bool forward_observed() {
  return static_cast<bool>(g_forward_observer);
}

bool grad_enabled() {
  return g_grad_enabled;
}
GradEnabledGuard::GradEnabledGuard(bool enabled) : previous_(g_grad_enabled) {
  g_grad_enabled = enabled;
}
GradEnabledGuard::~GradEnabledGuard() {
  g_grad_enabled = previous_;
}

ForwardObserverGuard::ForwardObserverGuard(ForwardObserver observer)
    : previous_(std::move(g_forward_observer)) {
  g_forward_observer = std::move(observer);
}
ForwardObserverGuard::~ForwardObserverGuard() {
  g_forward_observer = std::move(previous_);
}

BackwardObserverGuard::BackwardObserverGuard(BackwardObserver observer)
    : previous_(std::move(g_backward_observer)) {
  g_backward_observer = std::move(observer);
}
BackwardObserverGuard::~BackwardObserverGuard() {
  g_backward_observer = std::move(previous_);
}

Tensor Module::forward(const Tensor& x) {
  RESNET_CHECK(x.defined(), who() << ": expected an input tensor, got none");
  RESNET_CHECK(accepts(x.dtype()), who() << ": expected f32 input, got " << dtype_name(x.dtype()));
  Tensor y = forward_impl(x);
  has_forward_ = keeps_for_backward();
  if (g_forward_observer) report_forward(x, y);
  return y;
}

void Module::notify_observer(const Tensor& input, const Tensor& output) {
  if (g_forward_observer) g_forward_observer(*this, input, output);
}

void Module::set_path(const std::string& path) {
  path_ = path;
  for (auto& [name, child] : children_) child->set_path(path_ + "." + name);
}

Tensor Module::backward(const Tensor& grad_output) {
  RESNET_CHECK(has_forward_, who() << ": backward called without a forward that kept its state "
                                      "(train mode or GradEnabledGuard)");
  RESNET_CHECK(grad_output.defined() && accepts(grad_output.dtype()),
               who() << ": expected an f32 output gradient");
  Tensor grad_input = backward_impl(grad_output);
  release_saved();
  has_forward_ = false;
  if (g_backward_observer) g_backward_observer(*this);
  return grad_input;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
  on_mode_change();
}

std::vector<std::pair<std::string, Parameter*>> Module::named_parameters() {
  std::vector<std::pair<std::string, Parameter*>> out;
  for (auto& [name, p] : parameters_) out.emplace_back(name, p.get());
  for (auto& [cname, child] : children_)
    for (auto& [name, p] : child->named_parameters()) out.emplace_back(cname + "." + name, p);
  return out;
}

std::vector<std::pair<std::string, Tensor*>> Module::named_buffers() {
  std::vector<std::pair<std::string, Tensor*>> out;
  for (auto& [name, b] : buffers_) out.emplace_back(name, b.get());
  for (auto& [cname, child] : children_)
    for (auto& [name, b] : child->named_buffers()) out.emplace_back(cname + "." + name, b);
  return out;
}

std::vector<std::pair<std::string, Tensor*>> Module::state_dict() {
  std::vector<std::pair<std::string, Tensor*>> out;
  for (auto& [name, p] : parameters_) out.emplace_back(name, &p->value);
  for (auto& [name, b] : buffers_) out.emplace_back(name, b.get());
  for (auto& [cname, child] : children_)
    for (auto& [name, t] : child->state_dict()) out.emplace_back(cname + "." + name, t);
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
  std::vector<std::pair<std::string, Module*>> out;
  for (auto& [cname, child] : children_) {
    out.emplace_back(cname, child.get());
    for (auto& [name, m] : child->named_modules()) out.emplace_back(cname + "." + name, m);
  }
  return out;
}

int64_t Module::parameter_count() {
  int64_t n = 0;
  for (auto& [name, p] : named_parameters()) n += p->value.numel();
  return n;
}

void Module::zero_grad() {
  for (auto& [name, p] : named_parameters()) p->grad.fill(0.f);
}

std::string Module::to_string() const {
  // torch.nn.Module.__repr__, line for line.
  std::vector<std::string> extra_lines;
  std::string extra = extra_repr();
  if (!extra.empty()) {
    std::istringstream in(extra);
    for (std::string line; std::getline(in, line);) extra_lines.push_back(line);
  }
  std::vector<std::string> child_lines;
  for (const auto& [name, child] : children_)
    child_lines.push_back("(" + name + "): " + add_indent(child->to_string(), 2));
  std::string s = type_name_ + "(";
  if (!extra_lines.empty() || !child_lines.empty()) {
    if (extra_lines.size() == 1 && child_lines.empty()) {
      s += extra_lines[0];
    } else {
      s += "\n";
      for (const auto& l : extra_lines) s += "  " + l + "\n";
      for (const auto& l : child_lines) s += "  " + l + "\n";
    }
  }
  return s + ")";
}

Parameter& Module::register_parameter(const std::string& name, Tensor value) {
  auto p = std::make_unique<Parameter>();
  p->grad = Tensor(value.shape());
  p->value = std::move(value);
  parameters_.emplace_back(name, std::move(p));
  return *parameters_.back().second;
}

Tensor& Module::register_buffer(const std::string& name, Tensor value) {
  buffers_.emplace_back(name, std::make_unique<Tensor>(std::move(value)));
  return *buffers_.back().second;
}

}  // namespace resnet::nn
