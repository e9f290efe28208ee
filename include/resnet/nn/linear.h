#pragma once
// Linear: torch.nn.Linear(in_features, out_features, bias=True).
// Input [N, in_features] -> output [N, out_features], y = x W^T + b. Like PyTorch, any
// leading dimensions are allowed ([*, in] -> [*, out], a 1-D [in] gives [out]); they are
// treated as one batch dimension.
// Parameters: weight [out_features, in_features], bias [out_features] (only when bias is
// true), both initialized as PyTorch does by default: U(-1/sqrt(in), 1/sqrt(in))
// (kaiming_uniform_ with a = sqrt(5) for the weight, the same bound for the bias).
// Backward adds into weight().grad and bias()->grad, and returns the input gradient.

#include <memory>

#include "resnet/backend/inner_product.h"
#include "resnet/nn/module.h"

namespace resnet::nn {

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true);

  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }
  Parameter& weight() { return *weight_; }
  // Null when the layer has no bias.
  Parameter* bias() { return bias_; }
  // Whether backward computes the input's gradient (default true); off, backward adds
  // the parameter gradients only and returns an undefined tensor (a classifier trained
  // on a frozen network).
  void set_input_grad(bool on) { input_grad_ = on; }

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& grad_output) override;
  // "in_features=512, out_features=1000, bias=True"
  std::string extra_repr() const override;

  void release_saved() override { saved_input_ = Tensor(); }

 private:
  std::string label() const override;  // "Linear(512, 1000)", for messages

  int64_t in_features_, out_features_;
  Parameter* weight_;
  Parameter* bias_ = nullptr;
  std::unique_ptr<backend::InnerProductKernel> kernel_;
  Tensor saved_input_;  // [N, in], the input viewed as one batch dimension
  Shape saved_input_shape_;
  bool input_grad_ = true;
};

}  // namespace resnet::nn
