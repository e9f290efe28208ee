#include "resnet/nn/conv2d.h"

#include <sstream>

#include "resnet/backend/activation_ops.h"
#include "resnet/core/error.h"
#include "resnet/nn/init.h"

namespace resnet::nn {

Conv2dOptions Conv2dOptions::square(int64_t in, int64_t out, int64_t kernel, int64_t stride,
                                    int64_t padding, bool bias, int64_t groups) {
  Conv2dOptions o;
  o.in_channels = in;
  o.out_channels = out;
  o.kernel_h = o.kernel_w = kernel;
  o.stride_h = o.stride_w = stride;
  o.pad_h = o.pad_w = padding;
  o.bias = bias;
  o.groups = groups;
  return o;
}

namespace {
std::string pair_str(int64_t a, int64_t b) {
  std::ostringstream s;
  s << "(" << a << ", " << b << ")";
  return s.str();
}

}  // namespace

backend::Conv2dConfig to_backend_config(const Conv2dOptions& o) {
  backend::Conv2dConfig c;
  c.in_channels = o.in_channels;
  c.out_channels = o.out_channels;
  c.kernel_h = o.kernel_h;
  c.kernel_w = o.kernel_w;
  c.stride_h = o.stride_h;
  c.stride_w = o.stride_w;
  c.pad_h = o.pad_h;
  c.pad_w = o.pad_w;
  c.dilation_h = o.dilation_h;
  c.dilation_w = o.dilation_w;
  c.groups = o.groups;
  c.bias = o.bias;
  return c;
}

Conv2d::Conv2d(const Conv2dOptions& o) : Module("Conv2d"), options_(o) {
  RESNET_CHECK(o.in_channels > 0 && o.out_channels > 0,
               "Conv2d: expected positive channel counts, got in_channels="
                   << o.in_channels << ", out_channels=" << o.out_channels);
  RESNET_CHECK(o.kernel_h > 0 && o.kernel_w > 0 && o.stride_h > 0 && o.stride_w > 0 &&
                   o.dilation_h > 0 && o.dilation_w > 0 && o.pad_h >= 0 && o.pad_w >= 0,
               "Conv2d: expected positive kernel, stride and dilation and non-negative padding");
  RESNET_CHECK(o.groups > 0 && o.in_channels % o.groups == 0 && o.out_channels % o.groups == 0,
               "Conv2d: expected in_channels (" << o.in_channels << ") and out_channels ("
                                                << o.out_channels << ") divisible by groups ("
                                                << o.groups << ")");
  Tensor w({o.out_channels, o.in_channels / o.groups, o.kernel_h, o.kernel_w});
  init::default_weight_(w);
  int64_t fan_in = init::fan_in(w);
  weight_ = &register_parameter("weight", std::move(w));
  if (o.bias) {
    Tensor b({o.out_channels});
    init::default_bias_(b, fan_in);
    bias_ = &register_parameter("bias", std::move(b));
  }
  kernel_ = std::make_unique<backend::Conv2dKernel>(to_backend_config(o));
}

Tensor Conv2d::forward_impl(const Tensor& x) {
  const auto& o = options_;
  RESNET_CHECK(x.rank() == 4, who() << ": expected 4-D input [N, C, H, W], got " << x.shape_str());
  RESNET_CHECK(x.dim(1) == o.in_channels, who() << ": expected input with " << o.in_channels
                                                << " channels, got " << x.dim(1) << " (shape "
                                                << x.shape_str() << ")");
  RESNET_CHECK(x.dim(2) + 2 * o.pad_h >= o.dilation_h * (o.kernel_h - 1) + 1 &&
                   x.dim(3) + 2 * o.pad_w >= o.dilation_w * (o.kernel_w - 1) + 1,
               who() << ": input " << x.shape_str() << " is smaller than the kernel "
                     << pair_str(o.kernel_h, o.kernel_w));
  RESNET_CHECK(x.dim(0) > 0, who() << ": expected a non-empty batch, got " << x.shape_str());
  // In mixed precision the input is rounded to bf16 once, here: the forward reads it,
  // and it is what backward-weights reads later, so the kept copy is half the size and
  // nothing converts it again.
  const Tensor in = in_compute_type(x);
  if (keeps_for_backward()) saved_input_ = keeps_input_ ? in : Tensor();
  Tensor y = kernel_->forward(in, weight_->value, bias_ ? bias_->value : Tensor(),
                              output_layout_.value_or(x.layout()));
  // Observers read f32 (a bf16 output is meant for the batch norm alone).
  if (y.dtype() != DType::f32 && forward_observed())
    y = backend::activation_convert(y, 1.f, DType::f32, y.layout() == Layout::blocked16);
  return y;
}

Tensor Conv2d::in_compute_type(const Tensor& t) const {
  if (kernel_->compute_type() == DType::f32 || t.dtype() == kernel_->compute_type()) return t;
  // A residual block's output comes with its rounding, made as it was written; the
  // conversion below gives the same values in the same layout (plain or blocked16).
  if (Tensor rounded = t.rounded(kernel_->compute_type()); rounded.defined()) return rounded;
  return backend::activation_convert(t, 1.f, kernel_->compute_type(),
                                     t.layout() == Layout::blocked16);
}

Tensor Conv2d::backward_impl(const Tensor& grad_output) {
  const auto& o = options_;
  RESNET_CHECK(saved_input_.defined(), who() << ": backward without its input (the "
                                                "owner supplies it with supply_input)");
  Shape expected = {
      saved_input_.dim(0), o.out_channels,
      (saved_input_.dim(2) + 2 * o.pad_h - o.dilation_h * (o.kernel_h - 1) - 1) / o.stride_h + 1,
      (saved_input_.dim(3) + 2 * o.pad_w - o.dilation_w * (o.kernel_w - 1) - 1) / o.stride_w + 1};
  RESNET_CHECK(grad_output.shape() == expected, who() << ": expected output gradient "
                                                      << shape_str(expected) << ", got "
                                                      << grad_output.shape_str());
  // Both backward passes read the gradient in the compute type: converted once.
  const Tensor dy = in_compute_type(grad_output);
  if (needs_weight_grad()) {
    Tensor no_bias_grad;
    kernel_->backward_weights(dy, saved_input_, weight_->grad, bias_ ? bias_->grad : no_bias_grad);
  }
  return kernel_->backward_data(dy, weight_->value, saved_input_.shape(), saved_input_.layout());
}

Tensor Conv2d::recompute_output() {
  RESNET_CHECK(saved_input_.defined(),
               who() << ": no kept input to recompute the output from (a forward that kept "
                        "its state comes first)");
  return kernel_->forward(saved_input_, weight_->value, bias_ ? bias_->value : Tensor(),
                          output_layout_.value_or(saved_input_.layout()));
}

void Conv2d::backward_weights_only(const Tensor& grad_output) {
  RESNET_CHECK(saved_input_.defined(),
               who() << ": backward called without a forward that kept its state");
  if (!needs_weight_grad()) return;
  Tensor no_bias_grad;
  kernel_->backward_weights(in_compute_type(grad_output), saved_input_, weight_->grad,
                            bias_ ? bias_->grad : no_bias_grad);
}

bool Conv2d::needs_weight_grad() const {
  return weight_->requires_grad || (bias_ != nullptr && bias_->requires_grad);
}

std::string Conv2d::label() const {
  return "Conv2d(" + std::to_string(options_.in_channels) + ", " +
         std::to_string(options_.out_channels) + ")";
}

std::string Conv2d::extra_repr() const {
  // torch.nn.Conv2d.extra_repr: non-default arguments only.
  const auto& o = options_;
  std::string s = std::to_string(o.in_channels) + ", " + std::to_string(o.out_channels) +
                  ", kernel_size=" + pair_str(o.kernel_h, o.kernel_w) +
                  ", stride=" + pair_str(o.stride_h, o.stride_w);
  if (o.pad_h != 0 || o.pad_w != 0) s += ", padding=" + pair_str(o.pad_h, o.pad_w);
  if (o.dilation_h != 1 || o.dilation_w != 1)
    s += ", dilation=" + pair_str(o.dilation_h, o.dilation_w);
  if (o.groups != 1) s += ", groups=" + std::to_string(o.groups);
  if (!o.bias) s += ", bias=False";
  return s;
}

}  // namespace resnet::nn
