#pragma once
// ResidualUnit: what torchvision's BasicBlock and Bottleneck (and our plain twin) share.
// A main path of conv -> BN steps with a ReLU after each but the last, then the shortcut
// added (the input itself, or `downsample(input)`), then a final ReLU:
//   out = relu(bn_k(conv_k(... relu(bn_1(conv_1(x))) ...)) + shortcut(x))
// A plain unit has no shortcut at all: out = relu(bn_k(conv_k(...))).
// Subclasses register their children (so that printing and state_dict keys follow
// torchvision's order) and then describe the path with set_main_path/set_shortcut.
//
// Without backward (eval mode, no GradEnabledGuard) every child runs itself, unfused, as
// in PyTorch: this is the reference; fast inference lowers the tree to the compiled
// graph (infer::lower_module). With backward, each inner ReLU runs inside the BN before
// it and the final one inside the add (one pass, less kept memory); the ReLU module is
// still reported to the ForwardObserver with its true input and output.

#include <memory>
#include <vector>

#include "resnet/backend/relu_mask.h"
#include "resnet/nn/batchnorm2d.h"
#include "resnet/nn/conv2d.h"
#include "resnet/nn/relu.h"

namespace resnet::nn {

class ResidualUnit : public Module {
 public:
  // The last BN of the main path (zero_init_residual sets its weight to 0).
  BatchNorm2d& last_bn() { return *path_.back().second; }
  // Whether backward computes the input's gradient (default true). Off (the lowest
  // trainable block of a partly frozen network), the first convolutions and the
  // projection shortcut compute their weight gradients only, and backward returns an
  // undefined tensor.
  void set_input_grad(bool on) { input_grad_ = on; }
  // What forward runs, for lowering to the inference graph: the conv/BN pairs, the
  // shortcut's projection (null: the identity) and whether there is a shortcut at all.
  const std::vector<std::pair<Conv2d*, BatchNorm2d*>>& main_path() const { return path_; }
  Module* downsample() const { return downsample_; }
  bool has_shortcut() const { return residual_; }

 protected:
  explicit ResidualUnit(std::string type_name);
  // A ReLU (the `relu` child) follows every BN but the last; with backward, each BN
  // carries it (fused into one pass).
  void set_main_path(std::vector<std::pair<Conv2d*, BatchNorm2d*>> path, ReLU* relu);
  // downsample: null for the identity. residual false: a plain unit (no shortcut), whose
  // last BN then carries the final ReLU too.
  void set_shortcut(Module* downsample, bool residual);

  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& grad_output) override;

  void release_saved() override {
    saved_mask_ = {};
    saved_shape_.clear();
  }

 private:
  // Eval without backward: every module runs itself.
  Tensor forward_reference(const Tensor& x);
  // Hands the projection's BN its input again (recomputed) before its backward.
  void restore_projection_input();
  // Tells each BN the compute type of the convolutions that read its output and its input
  // gradient (BatchNorm2d::set_output_type), and each convolution the type its BN reads
  // (bf16 in mixed-precision training, f32 without backward), before a forward.
  void set_bf16_handoffs(bool training);

  std::vector<std::pair<Conv2d*, BatchNorm2d*>> path_;
  ReLU* relu_ = nullptr;
  Module* downsample_ = nullptr;
  bool residual_ = true;
  bool input_grad_ = true;
  // A 1x1 projection shortcut, whose BN input is recomputed too (else null).
  Conv2d* projection_conv_ = nullptr;
  BatchNorm2d* projection_bn_ = nullptr;
  // For backward: the output's shape, and (residual units) the final ReLU's mask.
  Shape saved_shape_;
  backend::ReluMask saved_mask_;
};

}  // namespace resnet::nn
