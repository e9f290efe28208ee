#include "resnet/nn/residual_unit.h"

#include <iterator>

#include "resnet/backend/eltwise.h"
#include "resnet/backend/relu_mask.h"
#include "resnet/core/error.h"
#include "resnet/nn/sequential.h"

namespace resnet::nn {

ResidualUnit::ResidualUnit(std::string type_name) : Module(std::move(type_name)) {}

void ResidualUnit::set_main_path(std::vector<std::pair<Conv2d*, BatchNorm2d*>> path, ReLU* relu) {
  path_ = std::move(path);
  relu_ = relu;
  // An inner BN+ReLU's output is the next convolution's input: neither keeps it; the BN
  // recomputes it from its own input in backward, for both (backward_impl).
  for (size_t i = 0; i + 1 < path_.size(); ++i) {
    path_[i].second->set_fused_relu(true, relu_);
    path_[i].second->set_recompute_output(true);
    path_[i + 1].first->set_keeps_input(false);
  }
  // A 1x1 first convolution (the bottleneck's) is cheap to run twice: at most a quarter of
  // the block's forward multiply-adds, a twelfth of its step. Its output, bn1's input, is
  // recomputed in backward from the block's input, which that convolution keeps anyway,
  // instead of being kept from forward to backward.
  path_[0].second->set_keeps_input(!(path_.size() > 1 && path_[0].first->is_pointwise()));
  // The bottleneck's last 1x1 convolution too (as many multiply-adds as its first): its
  // output, the last BN's input, is as large as the block's output, and backward runs it
  // again from its input, which backward recomputes anyway for its weight gradient.
  if (path_.size() > 2 && path_.back().first->is_pointwise())
    path_.back().second->set_keeps_input(false);
}

namespace {
// Sequential(Conv2d, BatchNorm2d), torchvision's downsample: only it has weights.
bool is_projection(Module* m, Conv2d** conv, BatchNorm2d** bn) {
  auto* seq = dynamic_cast<Sequential*>(m);
  if (!seq || seq->size() != 2) return false;
  *conv = dynamic_cast<Conv2d*>(&(*seq)[0]);
  *bn = dynamic_cast<BatchNorm2d*>(&(*seq)[1]);
  return *conv && *bn;
}
}  // namespace

void ResidualUnit::set_shortcut(Module* downsample, bool residual) {
  downsample_ = downsample;
  residual_ = residual;
  path_.back().second->set_fused_relu(!residual, relu_);
  // A 1x1 projection's output is recomputed in backward too, from the block's input.
  Conv2d* conv = nullptr;
  BatchNorm2d* bn = nullptr;
  if (residual_ && downsample_ && is_projection(downsample_, &conv, &bn) && conv->is_pointwise()) {
    projection_conv_ = conv;
    projection_bn_ = bn;
    bn->set_keeps_input(false);
  }
}

void ResidualUnit::restore_projection_input() {
  if (projection_bn_ && !projection_bn_->keeps_input())
    projection_bn_->supply_input(projection_conv_->recompute_output());
}

void ResidualUnit::set_bf16_handoffs(bool training) {
  // What a BN writes for a convolution that computes in bf16 is written in bf16: an inner
  // BN+ReLU's output (read by the next convolution alone) and every BN's input gradient
  // (read by its own convolution alone). The last BN's output meets the shortcut: f32.
  // In training, what such a convolution writes for a BN alone is bf16 too: its output (the
  // BN reads it, and keeps it for backward, at half the bytes) and, past the first
  // convolution, its input gradient (the previous BN's output gradient). Without backward
  // the output stays f32, which the BN's inference kernel reads directly.
  for (size_t i = 0; i < path_.size(); ++i) {
    auto [conv, bn] = path_[i];
    conv->set_output_type(training ? conv->compute_type() : DType::f32);
    conv->set_grad_input_type(training && i > 0 ? conv->compute_type() : DType::f32);
    bn->set_grad_input_type(conv->compute_type());
    bn->set_output_type(i + 1 < path_.size() ? path_[i + 1].first->compute_type() : DType::f32);
  }
  Conv2d* conv = nullptr;
  BatchNorm2d* bn = nullptr;
  if (residual_ && downsample_ && is_projection(downsample_, &conv, &bn)) {
    conv->set_output_type(training ? conv->compute_type() : DType::f32);
    bn->set_grad_input_type(conv->compute_type());
  }
}

Tensor ResidualUnit::forward_reference(const Tensor& x) {
  set_bf16_handoffs(false);
  Tensor h = x;
  for (size_t i = 0; i < path_.size(); ++i) {
    auto [conv, bn] = path_[i];
    h = bn->forward(conv->forward(h));
    if (i + 1 < path_.size() || !residual_) h = relu_->forward(h);
  }
  if (!residual_) return h;
  Tensor shortcut = downsample_ ? downsample_->forward(x) : x;
  RESNET_CHECK(shortcut.shape() == h.shape(), who() << ": shortcut output " << shortcut.shape_str()
                                                    << " does not match the main path's "
                                                    << h.shape_str());
  return relu_->forward(backend::add(h, shortcut));
}

Tensor ResidualUnit::forward_impl(const Tensor& x) {
  // The channel count is conv1's to check: its error names it ("layer3.0.conv1").
  if (!keeps_for_backward()) return forward_reference(x);
  // ReLUs after inner BNs run inside those BNs (set_main_path).
  set_bf16_handoffs(true);
  Tensor h = x;
  for (auto& [conv, bn] : path_) h = bn->forward(conv->forward(h));
  saved_shape_ = h.shape();
  if (!residual_) return h;
  Tensor shortcut = downsample_ ? downsample_->forward(x) : x;
  RESNET_CHECK(shortcut.shape() == h.shape(), who() << ": shortcut output " << shortcut.shape_str()
                                                    << " does not match the main path's "
                                                    << h.shape_str());
  // The sum, the final ReLU and its mask in one pass. The ReLU's backward needs only where
  // the sum was positive: kept as bits, so the output itself lives no longer than the next
  // block keeps it. In mixed precision the same pass rounds the output to bf16 for the next
  // block's convolutions (they compute as this block's do), which keep that rounding
  // instead of converting the output again.
  auto [out, mask] =
      backend::add_relu_masked(h, shortcut, path_[0].first->compute_type() == DType::bf16);
  saved_mask_ = std::move(mask);
  // The final ReLU ran inside the add; its input exists only for an observer.
  if (forward_observed()) relu_->notify_observer(backend::add(h, shortcut), out);
  return out;
}

Tensor ResidualUnit::backward_impl(const Tensor& grad_output) {
  RESNET_CHECK(grad_output.shape() == saved_shape_, who() << ": expected output gradient "
                                                          << shape_str(saved_shape_) << ", got "
                                                          << grad_output.shape_str());
  // A plain unit's final ReLU belongs to its last BN; a residual one's follows the sum.
  Tensor grad_sum = residual_ ? backend::relu_backward(grad_output, saved_mask_) : grad_output;
  Tensor g = grad_sum;
  for (size_t i = path_.size(); i-- > 0;) {
    auto [conv, bn] = path_[i];
    if (i > 0 && !bn->keeps_input()) {
      conv->supply_input(path_[i - 1].second->output_for_backward());
      bn->supply_input(conv->recompute_output());
    }
    g = bn->backward(g);
    if (i > 0) {
      if (i == 1 && !path_[0].second->keeps_input())
        path_[0].second->supply_input(path_[0].first->recompute_output());
      conv->supply_input(path_[i - 1].second->output_for_backward());
    }
    if (!input_grad_ && i == 0) {
      conv->backward_weights_only(g);
      g = Tensor();
    } else {
      g = conv->backward(g);
    }
  }
  if (!input_grad_) {
    // Only a projection shortcut has weights; the identity and zero padding need nothing.
    Conv2d* conv = nullptr;
    BatchNorm2d* bn = nullptr;
    if (residual_ && downsample_ && is_projection(downsample_, &conv, &bn)) {
      restore_projection_input();
      conv->backward_weights_only(bn->backward(grad_sum));
    }
    return Tensor();
  }
  if (residual_) {
    // The identity passes the sum's gradient to the input unchanged.
    restore_projection_input();
    backend::add_inplace(g, downsample_ ? downsample_->backward(grad_sum) : grad_sum);
  }
  return g;
}

}  // namespace resnet::nn
