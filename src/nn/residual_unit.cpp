#include "resnet/nn/residual_unit.h"

#include "fused_chain.h"
#include "resnet/backend/eltwise.h"
#include "resnet/core/error.h"
#include "resnet/nn/sequential.h"

namespace resnet::nn {

ResidualUnit::ResidualUnit(std::string type_name) : Module(std::move(type_name)) {}
ResidualUnit::~ResidualUnit() = default;

void ResidualUnit::on_mode_change() {
  fused_.reset();
}

namespace {
// Sequential(Conv2d, BatchNorm2d), torchvision's downsample, folds like the main path.
bool is_projection(Module* m, Conv2d** conv, BatchNorm2d** bn) {
  auto* seq = dynamic_cast<Sequential*>(m);
  if (!seq || seq->size() != 2) return false;
  *conv = dynamic_cast<Conv2d*>(&(*seq)[0]);
  *bn = dynamic_cast<BatchNorm2d*>(&(*seq)[1]);
  return *conv && *bn;
}
}  // namespace

Tensor ResidualUnit::forward_impl(const Tensor& x) {
  RESNET_CHECK(x.rank() == 4, type_name()
                                  << ": expected 4-D input [N, C, H, W], got " << x.shape_str());
  const int64_t in_channels = path_.front().first->options().in_channels;
  RESNET_CHECK(x.dim(1) == in_channels, type_name() << ": expected input with " << in_channels
                                                    << " channels, got " << x.dim(1) << " (shape "
                                                    << x.shape_str() << ")");
  if (!keeps_for_backward()) {
    if (!fused_) {
      using Chain = detail::FusedChain;
      std::vector<detail::FusedChainStep> steps;
      for (auto& [conv, bn] : path_) steps.push_back({conv, bn, true});
      Conv2d* conv = nullptr;
      BatchNorm2d* bn = nullptr;
      if (!residual_) {
        fused_ = std::make_unique<Chain>(steps, Chain::Shortcut::none);
      } else if (!downsample_) {
        fused_ = std::make_unique<Chain>(steps, Chain::Shortcut::identity);
      } else if (is_projection(downsample_, &conv, &bn)) {
        fused_ = std::make_unique<Chain>(steps, Chain::Shortcut::projection, conv, bn);
      } else {
        Module* d = downsample_;
        fused_ = std::make_unique<Chain>(steps, Chain::Shortcut::custom, nullptr, nullptr,
                                         [d](const Tensor& input) { return d->forward(input); });
      }
    }
    return fused_->run(x);
  }
  saved_relu_outputs_.assign(path_.size(), Tensor());
  Tensor h = x;
  for (size_t i = 0; i + 1 < path_.size(); ++i) {
    h = backend::relu_forward(path_[i].second->forward(path_[i].first->forward(h)));
    saved_relu_outputs_[i] = h;
  }
  Tensor out = path_.back().second->forward(path_.back().first->forward(h));
  if (residual_) {
    Tensor shortcut = downsample_ ? downsample_->forward(x) : x;
    RESNET_CHECK(shortcut.shape() == out.shape(),
                 type_name() << ": shortcut output " << shortcut.shape_str()
                             << " does not match the main path's " << out.shape_str());
    out = backend::add(out, shortcut);
  }
  out = backend::relu_forward(out);
  saved_relu_outputs_.back() = out;
  return out;
}

Tensor ResidualUnit::backward_impl(const Tensor& grad_output) {
  const Tensor& out = saved_relu_outputs_.back();
  RESNET_CHECK(grad_output.shape() == out.shape(), type_name() << ": expected output gradient "
                                                               << out.shape_str() << ", got "
                                                               << grad_output.shape_str());
  Tensor grad_sum = backend::relu_backward(grad_output, out);
  Tensor g = path_.back().first->backward(path_.back().second->backward(grad_sum));
  for (size_t i = path_.size() - 1; i-- > 0;) {
    g = backend::relu_backward(g, saved_relu_outputs_[i]);
    g = path_[i].first->backward(path_[i].second->backward(g));
  }
  if (residual_) {
    // The identity passes the sum's gradient to the input unchanged.
    backend::add_inplace(g, downsample_ ? downsample_->backward(grad_sum) : grad_sum);
  }
  return g;
}

}  // namespace resnet::nn
