#pragma once
// ReLU: torch.nn.ReLU. Any shape in, the same shape out: y = max(x, 0).
// `inplace` only changes how it prints (our tensors are never aliased by it).

#include "resnet/nn/module.h"

namespace resnet::nn {

class ReLU : public Module {
 public:
  explicit ReLU(bool inplace = false) : Module("ReLU"), inplace_(inplace) {}

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& grad_output) override;
  std::string extra_repr() const override { return inplace_ ? "inplace=True" : ""; }

  void release_saved() override { saved_output_ = Tensor(); }

 private:
  bool inplace_;
  Tensor saved_output_;
};

}  // namespace resnet::nn
