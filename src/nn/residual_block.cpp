#include "resnet/nn/residual_block.h"

#include "resnet/backend/eltwise.h"
#include "resnet/core/error.h"

namespace resnet::nn {

ResidualBlock::ResidualBlock(int64_t in, int64_t out, int64_t stride)
    : Module("ResidualBlock"), in_channels_(in), out_channels_(out) {
  RESNET_CHECK(in > 0 && out > 0 && stride > 0,
               "ResidualBlock: expected positive in_channels, out_channels and "
               "stride, got "
                   << in << ", " << out << ", " << stride);
  conv1_ = register_module(
      "conv1", std::make_shared<Conv2d>(Conv2dOptions::square(in, out, 3, stride, 1, false)));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(out));
  relu_ = register_module("relu", std::make_shared<ReLU>(true));
  conv2_ = register_module(
      "conv2", std::make_shared<Conv2d>(Conv2dOptions::square(out, out, 3, 1, 1, false)));
  bn2_ = register_module("bn2", std::make_shared<BatchNorm2d>(out));
  shortcut_ = register_module("shortcut", std::make_shared<Sequential>());
  if (stride != 1 || in != out) {
    shortcut_->push_back(
        std::make_shared<Conv2d>(Conv2dOptions::square(in, out, 1, stride, 0, false)));
    shortcut_->push_back(std::make_shared<BatchNorm2d>(out));
  }
}

std::string ResidualBlock::label() const {
  return "ResidualBlock(" + std::to_string(in_channels_) + ", " + std::to_string(out_channels_) +
         ")";
}

Tensor ResidualBlock::forward_impl(const Tensor& x) {
  RESNET_CHECK(x.rank() == 4, who() << ": expected 4-D input [N, C, H, W], got " << x.shape_str());
  RESNET_CHECK(x.dim(1) == in_channels_, who() << ": expected input with " << in_channels_
                                               << " channels, got " << x.dim(1) << " (shape "
                                               << x.shape_str() << ")");
  if (!keeps_for_backward()) {
    // Without backward every module runs itself, as in PyTorch.
    Tensor hidden = relu_->forward(bn1_->forward(conv1_->forward(x)));
    Tensor branch = bn2_->forward(conv2_->forward(hidden));
    return relu_->forward(backend::add(branch, shortcut_->forward(x)));
  }
  Tensor normalized = bn1_->forward(conv1_->forward(x));
  Tensor hidden = backend::relu_forward(normalized);
  relu_->notify_observer(normalized, hidden);
  Tensor branch = bn2_->forward(conv2_->forward(hidden));
  Tensor sum = backend::add(branch, shortcut_->forward(x));
  Tensor output = backend::relu_forward(sum);
  relu_->notify_observer(sum, output);
  saved_hidden_ = hidden;
  saved_output_ = output;
  return output;
}

Tensor ResidualBlock::backward_impl(const Tensor& grad_output) {
  RESNET_CHECK(grad_output.shape() == saved_output_.shape(),
               who() << ": expected output gradient " << saved_output_.shape_str() << ", got "
                     << grad_output.shape_str());
  // Gradient at the sum F(x) + shortcut(x).
  Tensor grad_sum = backend::relu_backward(grad_output, saved_output_);
  // The residual branch F.
  Tensor g = bn2_->backward(grad_sum);
  g = conv2_->backward(g);
  g = backend::relu_backward(g, saved_hidden_);
  g = bn1_->backward(g);
  Tensor grad_input = conv1_->backward(g);
  // The shortcut. With the identity, the sum's gradient reaches the input unchanged
  // (an empty Sequential's backward returns its argument): this is why depth does not
  // starve early layers of gradient, the point of the seed.
  backend::add_inplace(grad_input, shortcut_->backward(grad_sum));
  return grad_input;
}

}  // namespace resnet::nn
