#include "resnet/nn/linear.h"

#include <sstream>

#include "resnet/core/error.h"
#include "resnet/nn/init.h"

namespace resnet::nn {

Linear::Linear(int64_t in_features, int64_t out_features, bool bias)
    : Module("Linear"), in_features_(in_features), out_features_(out_features) {
  RESNET_CHECK(in_features > 0 && out_features > 0,
               who() << ": expected positive in_features and out_features, got in_features="
                     << in_features << ", out_features=" << out_features);
  Tensor w({out_features, in_features});
  init::default_weight_(w);
  weight_ = &register_parameter("weight", std::move(w));
  if (bias) {
    Tensor b({out_features});
    init::default_bias_(b, in_features);
    bias_ = &register_parameter("bias", std::move(b));
  }
  kernel_ = std::make_unique<backend::InnerProductKernel>(in_features, out_features, bias);
}

std::string Linear::label() const {
  std::ostringstream s;
  s << "Linear(" << in_features_ << ", " << out_features_ << ")";
  return s.str();
}

Tensor Linear::forward_impl(const Tensor& x) {
  RESNET_CHECK(x.rank() >= 1 && x.dim(-1) == in_features_,
               who() << ": expected input [N, " << in_features_ << "] (or [*, " << in_features_
                     << "]), got " << x.shape_str());
  const int64_t n = x.numel() / in_features_;
  RESNET_CHECK(n > 0, who() << ": expected a non-empty batch, got " << x.shape_str());
  Tensor x2 = x.reshape({n, in_features_});
  if (keeps_for_backward()) {
    saved_input_ = x2;
    saved_input_shape_ = x.shape();
  }
  Tensor y = kernel_->forward(x2, weight_->value, bias_ ? bias_->value : Tensor());
  Shape out_shape = x.shape();
  out_shape.back() = out_features_;
  return y.reshape(out_shape);
}

Tensor Linear::backward_impl(const Tensor& grad_output) {
  Shape expected = saved_input_shape_;
  expected.back() = out_features_;
  RESNET_CHECK(grad_output.shape() == expected, who() << ": expected output gradient "
                                                      << shape_str(expected) << ", got "
                                                      << grad_output.shape_str());
  Tensor dy = grad_output.reshape({saved_input_.dim(0), out_features_});
  if (weight_->requires_grad || (bias_ != nullptr && bias_->requires_grad)) {
    Tensor no_bias_grad;
    kernel_->backward_weights(dy, saved_input_, weight_->grad, bias_ ? bias_->grad : no_bias_grad);
  }
  if (!input_grad_) return Tensor();
  return kernel_->backward_data(dy, weight_->value).reshape(saved_input_shape_);
}

std::string Linear::extra_repr() const {
  // torch.nn.Linear.extra_repr.
  std::ostringstream s;
  s << "in_features=" << in_features_ << ", out_features=" << out_features_
    << ", bias=" << (bias_ ? "True" : "False");
  return s.str();
}

}  // namespace resnet::nn
