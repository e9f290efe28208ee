#include "fused_chain.h"

#include <cmath>
#include <utility>

namespace resnet::nn::detail {

namespace {
backend::FusedConv2dConfig fused_config(const Conv2dOptions& o, bool add_residual, bool relu) {
  backend::FusedConv2dConfig f;
  f.conv = to_backend_config(o);
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

FusedChain::FusedChain(std::vector<FusedChainStep> main_path, Shortcut kind,
                       Conv2d* projection_conv, BatchNorm2d* projection_bn, CustomShortcut custom)
    : kind_(kind), custom_(std::move(custom)) {
  for (size_t i = 0; i < main_path.size(); ++i) {
    const bool last = i + 1 == main_path.size();
    steps_.push_back(std::make_unique<FoldedConvBn>(
        *main_path[i].conv, *main_path[i].bn, last && kind != Shortcut::none, main_path[i].relu));
  }
  if (kind == Shortcut::projection)
    projection_ = std::make_unique<FoldedConvBn>(*projection_conv, *projection_bn, false, false);
}

Tensor FusedChain::run(const Tensor& x) {
  // Convert the plain input once, into the first convolution's layout; the projection
  // then reads it in that layout too.
  backend::Activation input = steps_.front()->adopt(backend::Activation::borrow(x));
  backend::Activation residual;
  switch (kind_) {
    case Shortcut::none:
      break;
    case Shortcut::identity:
      residual = input;
      break;
    case Shortcut::projection:
      residual = projection_->run(input);
      break;
    case Shortcut::custom:
      residual = backend::Activation::borrow(custom_(x));
      break;
  }
  // Moved, so that the last step may write its output into the residual's buffer.
  backend::Activation h = std::move(input);
  for (size_t i = 0; i + 1 < steps_.size(); ++i) h = steps_[i]->run(h);
  return steps_.back()->run(h, std::move(residual)).to_tensor();
}

}  // namespace resnet::nn::detail
