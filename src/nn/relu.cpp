#include "resnet/nn/relu.h"

#include "resnet/backend/eltwise.h"
#include "resnet/core/error.h"

namespace resnet::nn {

Tensor ReLU::forward_impl(const Tensor& x) {
  Tensor y = backend::relu_forward(x);
  if (keeps_for_backward()) saved_output_ = y;
  return y;
}

Tensor ReLU::backward_impl(const Tensor& grad_output) {
  RESNET_CHECK(grad_output.shape() == saved_output_.shape(),
               who() << ": expected output gradient " << saved_output_.shape_str() << ", got "
                     << grad_output.shape_str());
  return backend::relu_backward(grad_output, saved_output_);
}

}  // namespace resnet::nn
