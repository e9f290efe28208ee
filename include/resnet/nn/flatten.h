#pragma once
// Flatten: torch.nn.Flatten(start_dim=1, end_dim=-1). Merges dimensions start_dim..end_dim
// (negative values count from the end) into one: [N, C, H, W] -> [N, C*H*W] by default.
// Any input of rank >= 1 whose rank admits both dims, with start_dim <= end_dim once
// resolved. The output shares the input's storage (a view, as in PyTorch); backward
// reshapes the gradient back to the input's shape. No parameters.

#include "resnet/nn/module.h"

namespace resnet::nn {

class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1);

  int64_t start_dim() const { return start_dim_; }
  int64_t end_dim() const { return end_dim_; }

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& grad_output) override;
  // "start_dim=1, end_dim=-1"
  std::string extra_repr() const override;

 private:
  std::string label() const override;  // "Flatten(start_dim=1, end_dim=-1)", for messages
  // The output shape for an input shape; throws when the dims do not fit its rank.
  Shape flattened(const Shape& in) const;

  int64_t start_dim_, end_dim_;
  Shape saved_input_shape_;
  Shape saved_output_shape_;
};

}  // namespace resnet::nn
