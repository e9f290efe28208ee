#include "resnet/nn/sequential.h"

namespace resnet::nn {

Sequential::Sequential(std::vector<ModulePtr> modules) : Sequential() {
  for (auto& m : modules) push_back(std::move(m));
}

void Sequential::push_back(ModulePtr module) {
  register_module(std::to_string(modules_.size()), module);
  modules_.push_back(std::move(module));
}

Tensor Sequential::forward_impl(const Tensor& x) {
  Tensor y = x;
  for (auto& m : modules_) y = m->forward(y);
  return y;
}

// A child that returns no gradient (nothing below it needs one: ResidualUnit::
// set_input_grad) ends the pass; the children before it ran no backward-ready forward.
Tensor Sequential::backward_impl(const Tensor& grad_output) {
  Tensor g = grad_output;
  for (auto it = modules_.rbegin(); it != modules_.rend() && g.defined(); ++it)
    g = (*it)->backward(g);
  return g;
}

}  // namespace resnet::nn
