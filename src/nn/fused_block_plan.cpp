#include "fused_block_plan.h"

#include <cmath>
#include <utility>

namespace resnet::nn::detail {

namespace {
backend::FusedConv2dConfig fused_config(const Conv2dOptions& o, bool add_residual, bool relu) {
  backend::FusedConv2dConfig f;
  f.conv.in_channels = o.in_channels;
  f.conv.out_channels = o.out_channels;
  f.conv.kernel_h = o.kernel_h;
  f.conv.kernel_w = o.kernel_w;
  f.conv.stride_h = o.stride_h;
  f.conv.stride_w = o.stride_w;
  f.conv.pad_h = o.pad_h;
  f.conv.pad_w = o.pad_w;
  f.conv.dilation_h = o.dilation_h;
  f.conv.dilation_w = o.dilation_w;
  f.conv.groups = o.groups;
  f.conv.bias = true;
  f.add_residual = add_residual;
  f.relu = relu;
  return f;
}
}  // namespace

FoldedConvBn::FoldedConvBn(Conv2d& conv, BatchNorm2d& bn, bool add_residual, bool relu)
    : conv_(conv), bn_(bn), fused_(fused_config(conv.options(), add_residual, relu)) {}

void FoldedConvBn::refresh() {
  const Tensor& w = conv_.weight().value;
  const Tensor* sources[] = {&w, &bn_.weight().value, &bn_.bias().value, &bn_.running_mean(),
                             &bn_.running_var()};
  std::vector<uint64_t> versions;
  for (const Tensor* t : sources) versions.push_back(t->version());
  if (conv_.bias()) versions.push_back(std::as_const(conv_.bias()->value).version());
  if (folded_weight_.defined() && versions == source_versions_) return;

  const int64_t oc = w.dim(0), per_oc = w.numel() / oc;
  Tensor weight(w.shape()), bias({oc});
  const float* src_w = w.f32();
  const float* gamma = std::as_const(bn_.weight().value).f32();
  const float* beta = std::as_const(bn_.bias().value).f32();
  const float* mean = std::as_const(bn_.running_mean()).f32();
  const float* var = std::as_const(bn_.running_var()).f32();
  const float* conv_bias = conv_.bias() ? std::as_const(conv_.bias()->value).f32() : nullptr;
  float* dst_w = weight.f32();
  float* dst_b = bias.f32();
  const double eps = bn_.options().eps;
  for (int64_t o = 0; o < oc; ++o) {
    // Double precision keeps the folded weights within rounding of the unfolded path.
    double scale = gamma[o] / std::sqrt(static_cast<double>(var[o]) + eps);
    for (int64_t i = 0; i < per_oc; ++i)
      dst_w[o * per_oc + i] = static_cast<float>(src_w[o * per_oc + i] * scale);
    double b = conv_bias ? conv_bias[o] : 0.0;
    dst_b[o] = static_cast<float>(beta[o] + (b - mean[o]) * scale);
  }
  folded_weight_ = weight;
  folded_bias_ = bias;
  fused_.set_weights(folded_weight_, folded_bias_);
  source_versions_ = versions;
}

backend::Activation FoldedConvBn::adopt(const backend::Activation& src) {
  return fused_.adopt(src);
}

backend::Activation FoldedConvBn::run(const backend::Activation& src,
                                      backend::Activation residual) {
  refresh();
  return fused_.run(src, std::move(residual));
}

Tensor FusedBlockPlan::run(const Tensor& x, Conv2d& conv1, BatchNorm2d& bn1, Conv2d& conv2,
                           BatchNorm2d& bn2, Sequential* shortcut) {
  if (!first_) {
    first_ = std::make_unique<FoldedConvBn>(conv1, bn1, false, true);
    second_ = std::make_unique<FoldedConvBn>(conv2, bn2, true, true);
    if (shortcut) {
      projection_ =
          std::make_unique<FoldedConvBn>(static_cast<Conv2d&>((*shortcut)[0]),
                                         static_cast<BatchNorm2d&>((*shortcut)[1]), false, false);
    }
  }
  // Convert the plain input once, into conv1's layout; the projection then reads it
  // in that layout too.
  backend::Activation input = first_->adopt(backend::Activation::borrow(x));
  backend::Activation hidden = first_->run(input);
  backend::Activation residual = projection_ ? projection_->run(input) : input;
  return second_->run(hidden, std::move(residual)).to_tensor();
}

}  // namespace resnet::nn::detail
