#pragma once
// Sequential: torch.nn.Sequential. Children are named "0", "1", ...; forward applies
// them in order, backward in reverse. An empty Sequential is the identity, which is
// how the seed's block spells its identity shortcut.

#include "resnet/nn/module.h"

namespace resnet::nn {

class Sequential : public Module {
 public:
  Sequential() : Module("Sequential") {}
  explicit Sequential(std::vector<ModulePtr> modules);

  // Appends a child named by its index.
  void push_back(ModulePtr module);
  size_t size() const { return modules_.size(); }
  bool empty() const { return modules_.empty(); }
  Module& operator[](size_t i) { return *modules_.at(i); }

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& grad_output) override;

 private:
  std::vector<ModulePtr> modules_;
};

}  // namespace resnet::nn
