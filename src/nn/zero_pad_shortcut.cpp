#include "resnet/nn/zero_pad_shortcut.h"

#include <sstream>

#include "resnet/backend/eltwise.h"
#include "resnet/backend/shortcut_pad.h"
#include "resnet/core/error.h"

namespace resnet::nn {

namespace {
Tensor in_place_layout(const Tensor& t) {
  const bool direct = t.dtype() == DType::f32 && (t.is_plain() || t.layout() == Layout::blocked16);
  return direct ? t : backend::to_layout(t, Layout::plain);
}
}  // namespace

ZeroPadShortcut::ZeroPadShortcut(int64_t in_channels, int64_t out_channels, int64_t stride)
    : Module("ZeroPadShortcut"),
      in_channels_(in_channels),
      out_channels_(out_channels),
      stride_(stride),
      pad_front_((out_channels - in_channels) / 2) {
  RESNET_CHECK(
      in_channels > 0 && out_channels >= in_channels && stride > 0,
      "ZeroPadShortcut: expected 0 < in_channels <= out_channels and a positive stride, got "
          << in_channels << ", " << out_channels << ", " << stride);
}

Tensor ZeroPadShortcut::forward_impl(const Tensor& input) {
  // The copy reads and writes plain and blocked16 activations in place; other layouts
  // are converted around it.
  const Tensor x = in_place_layout(input);
  RESNET_CHECK(x.rank() == 4 && x.dim(1) == in_channels_, who() << ": expected input [N, "
                                                                << in_channels_ << ", H, W], got "
                                                                << x.shape_str());
  Tensor y = backend::subsample_pad_channels(x, stride_, stride_, pad_front_,
                                             out_channels_ - in_channels_ - pad_front_);
  if (keeps_for_backward()) {
    saved_input_shape_ = x.shape();
    saved_layout_ = input.layout();
  }
  return backend::to_layout(y, input.layout());
}

Tensor ZeroPadShortcut::backward_impl(const Tensor& grad) {
  const Tensor grad_output = in_place_layout(grad);
  const int64_t n = saved_input_shape_[0], h = saved_input_shape_[2], w = saved_input_shape_[3];
  const int64_t oh = (h + stride_ - 1) / stride_, ow = (w + stride_ - 1) / stride_;
  RESNET_CHECK(grad_output.shape() == (Shape{n, out_channels_, oh, ow}),
               who() << ": expected output gradient " << shape_str({n, out_channels_, oh, ow})
                     << ", got " << grad_output.shape_str());
  Tensor dx = backend::subsample_pad_channels_backward(grad_output, saved_input_shape_, stride_,
                                                       stride_, pad_front_);
  return backend::to_layout(dx, saved_layout_);
}

std::string ZeroPadShortcut::extra_repr() const {
  std::ostringstream s;
  s << "in_channels=" << in_channels_ << ", out_channels=" << out_channels_
    << ", stride=" << stride_;
  return s.str();
}

}  // namespace resnet::nn
