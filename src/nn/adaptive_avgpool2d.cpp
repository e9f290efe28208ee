#include "resnet/nn/adaptive_avgpool2d.h"

#include <sstream>

#include "resnet/backend/eltwise.h"
#include "resnet/core/error.h"

namespace resnet::nn {

AdaptiveAvgPool2d::AdaptiveAvgPool2d(int64_t out_h, int64_t out_w)
    : AdaptiveAvgPool2d(out_h, out_w, false) {}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(int64_t size) : AdaptiveAvgPool2d(size, size, true) {}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(int64_t out_h, int64_t out_w, bool as_int)
    : Module("AdaptiveAvgPool2d"), out_h_(out_h), out_w_(out_w), as_int_(as_int) {
  RESNET_CHECK(out_h_ > 0 && out_w_ > 0,
               who() << ": expected a positive output size, got " << extra_repr());
  kernel_ = std::make_unique<backend::AdaptiveAvgPool2dKernel>(out_h_, out_w_);
}

std::string AdaptiveAvgPool2d::extra_repr() const {
  std::ostringstream s;
  s << "output_size=";
  if (as_int_) {
    s << out_h_;
  } else {
    s << "(" << out_h_ << ", " << out_w_ << ")";
  }
  return s.str();
}

std::string AdaptiveAvgPool2d::label() const {
  std::ostringstream s;
  s << "AdaptiveAvgPool2d(" << extra_repr() << ")";
  return s.str();
}

Tensor AdaptiveAvgPool2d::forward_impl(const Tensor& x) {
  RESNET_CHECK(x.rank() == 4, who() << ": expected 4-D input [N, C, H, W], got " << x.shape_str());
  RESNET_CHECK(x.dim(0) > 0 && x.dim(1) > 0 && x.dim(2) > 0 && x.dim(3) > 0,
               who() << ": expected a non-empty input, got " << x.shape_str());
  if (keeps_for_backward()) saved_input_shape_ = x.shape();
  // The pooling kernels read plain tensors; a blocked one (a convolution's) is converted.
  return kernel_->forward(backend::to_layout(x, Layout::plain));
}

Tensor AdaptiveAvgPool2d::backward_impl(const Tensor& grad_output) {
  const Shape& s = saved_input_shape_;
  const Shape expected = {s[0], s[1], out_h_, out_w_};
  RESNET_CHECK(grad_output.shape() == expected, who() << ": expected output gradient "
                                                      << shape_str(expected) << ", got "
                                                      << grad_output.shape_str());
  return kernel_->backward(grad_output, s);
}

}  // namespace resnet::nn
