#include "resnet/nn/maxpool2d.h"

#include <sstream>

#include "resnet/core/error.h"

namespace resnet::nn {

MaxPool2d::MaxPool2d(int64_t kernel_size, std::optional<int64_t> stride, int64_t padding)
    : Module("MaxPool2d"),
      kernel_size_(kernel_size),
      stride_(stride.value_or(kernel_size)),
      padding_(padding) {
  RESNET_CHECK(kernel_size_ > 0, who() << ": expected kernel_size > 0, got " << kernel_size_);
  RESNET_CHECK(stride_ > 0, who() << ": expected stride > 0, got " << stride_);
  RESNET_CHECK(padding_ >= 0, who() << ": expected padding >= 0, got " << padding_);
  // PyTorch refuses this too ("pad should be at most half of kernel size"); it guarantees
  // every window holds at least one real element.
  RESNET_CHECK(padding_ <= kernel_size_ / 2,
               who() << ": expected padding at most half the kernel size (<= " << kernel_size_ / 2
                     << "), got padding=" << padding_);
  kernel_ = std::make_unique<backend::MaxPool2dKernel>(kernel_size_, stride_, padding_);
}

std::string MaxPool2d::label() const {
  std::ostringstream s;
  s << "MaxPool2d(kernel_size=" << kernel_size_ << ", stride=" << stride_
    << ", padding=" << padding_ << ")";
  return s.str();
}

Tensor MaxPool2d::forward_impl(const Tensor& x) {
  RESNET_CHECK(x.rank() == 4, who() << ": expected 4-D input [N, C, H, W], got " << x.shape_str());
  RESNET_CHECK(x.dim(0) > 0 && x.dim(1) > 0,
               who() << ": expected a non-empty batch and channels, got " << x.shape_str());
  const int64_t min_size = kernel_size_ - 2 * padding_;
  RESNET_CHECK(x.dim(2) >= min_size && x.dim(3) >= min_size,
               who() << ": expected input at least " << min_size << "x" << min_size
                     << " (one window after padding), got " << x.shape_str());
  if (!keeps_for_backward()) {
    saved_workspace_ = Tensor();
    return kernel_->forward(x, nullptr);
  }
  saved_input_shape_ = x.shape();
  return kernel_->forward(x, &saved_workspace_);
}

Tensor MaxPool2d::backward_impl(const Tensor& grad_output) {
  const Shape& s = saved_input_shape_;
  const Shape expected = {s[0], s[1], kernel_->out_size(s[2]), kernel_->out_size(s[3])};
  RESNET_CHECK(grad_output.shape() == expected, who() << ": expected output gradient "
                                                      << shape_str(expected) << ", got "
                                                      << grad_output.shape_str());
  return kernel_->backward(grad_output, s, saved_workspace_);
}

std::string MaxPool2d::extra_repr() const {
  // torch.nn.MaxPool2d.extra_repr with int arguments.
  std::ostringstream s;
  s << "kernel_size=" << kernel_size_ << ", stride=" << stride_ << ", padding=" << padding_
    << ", dilation=1, ceil_mode=False";
  return s.str();
}

}  // namespace resnet::nn
