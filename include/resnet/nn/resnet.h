#pragma once
// ResNet: torchvision.models.resnet.ResNet, and the paper's CIFAR networks built the same
// way (He et al. 2015, section 4.2). Children, in torchvision's order:
//   conv1, bn1, relu, [maxpool], layer1 .. layerK, avgpool, fc
// ImageNet stem: conv1 7x7/2 (in_channels -> 64), maxpool 3x3/2. CIFAR stem: conv1 3x3/1
// (in_channels -> 16), no maxpool. Each stage is torchvision's _make_layer: a Sequential
// of blocks whose first block carries the stride and, when the shape changes, the
// shortcut's downsample. Input [N, in_channels, H, W] -> logits [N, num_classes].

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "resnet/nn/adaptive_avgpool2d.h"
#include "resnet/nn/batchnorm2d.h"
#include "resnet/nn/conv2d.h"
#include "resnet/nn/linear.h"
#include "resnet/nn/maxpool2d.h"
#include "resnet/nn/relu.h"
#include "resnet/nn/sequential.h"

namespace resnet::nn {

// A chain of modules in forward order, with their paths ("conv1", "layer1.0"), and what
// runs it without gradients. See ResNet::set_prefix_compiler.
using ModuleChain = std::vector<std::pair<std::string, Module*>>;
using ChainRunner = std::function<Tensor(const Tensor&)>;
using ChainCompiler = std::function<ChainRunner(const ModuleChain&)>;

struct ResNetConfig {
  enum class Stem { imagenet, cifar };
  enum class Block { basic, bottleneck, plain };
  // How a stage's first block meets a change of shape: torchvision's 1x1 conv + BN
  // (the paper's option B) or zero-padded channels (option A, CIFAR default).
  enum class Shortcut { projection, zero_pad };

  std::string type_name = "ResNet";  // printed class name
  Stem stem = Stem::imagenet;
  Block block = Block::basic;
  Shortcut shortcut = Shortcut::projection;
  std::vector<int64_t> layers = {2, 2, 2, 2};         // blocks per stage
  std::vector<int64_t> planes = {64, 128, 256, 512};  // planes per stage
  int64_t in_channels = 3;
  int64_t num_classes = 1000;
  int64_t groups = 1;            // ResNeXt cardinality (Bottleneck only)
  int64_t width_per_group = 64;  // Wide ResNet / ResNeXt width (Bottleneck only)
  bool zero_init_residual = false;
};

class ResNet : public Module {
 public:
  explicit ResNet(const ResNetConfig& config);
  const ResNetConfig& config() const { return config_; }
  // Whether backward computes the gradient of the input image (default true). Training
  // does not need it, and skipping it saves the first convolution's backward-data pass;
  // backward() then returns an undefined tensor.
  //
  // Without the input gradient, the network also skips what frozen layers (nn/freeze.h)
  // do not need. Its frozen prefix -- the stem and the blocks, in forward order, up to
  // the first one with a trainable parameter -- runs as in eval mode (BN with running
  // statistics, nothing kept for backward), and backward stops at the input of the
  // lowest trainable block, which computes its weight gradients only. With every block
  // frozen, only the classifier's backward runs.
  void set_input_grad(bool on) { input_grad_ = on; }
  // How the frozen prefix runs. Without a compiler (the default), and whenever a
  // ForwardObserver watches, its modules run themselves (the reference). Training sets
  // infer::compile_chain: the prefix is lowered to the inference graph and compiled (BN
  // folded, ReLU and add fused), again whenever the prefix or its weights change.
  void set_prefix_compiler(ChainCompiler compiler) {
    prefix_compiler_ = std::move(compiler);
    prefix_runner_ = nullptr;
  }

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& grad_output) override;

 private:
  std::shared_ptr<Sequential> make_layer(int64_t planes, int64_t blocks, int64_t stride);
  void initialize();
  // Counts the frozen prefix (0 with the input gradient on) and puts its modules in eval
  // mode; tells the block just above it, or the classifier, to skip its input gradient.
  void apply_frozen_prefix();
  // Eval without backward: every module runs itself, as in PyTorch.
  Tensor forward_reference(const Tensor& x);
  // Values per channel that the deepest batch norms normalize in training for an input
  // of `input` (batch times the last stage's height and width).
  int64_t deepest_bn_values(const Shape& input) const;
  // Allows Winograd convolutions for this training input or not (see resnet.cpp).
  void apply_winograd_policy(const Shape& input);
  // The stem and the frozen blocks, without gradients; plain output.
  Tensor forward_frozen_prefix(const Tensor& x);
  ModuleChain frozen_prefix_chain();
  // The versions of the prefix's parameters and buffers (a change recompiles it).
  std::vector<uint64_t> frozen_prefix_versions();

  ResNetConfig config_;
  int64_t inplanes_;
  std::shared_ptr<Conv2d> conv1_;
  std::shared_ptr<BatchNorm2d> bn1_;
  std::shared_ptr<ReLU> relu_;
  std::shared_ptr<MaxPool2d> maxpool_;  // null for the CIFAR stem
  std::vector<std::shared_ptr<Sequential>> layers_;
  std::shared_ptr<AdaptiveAvgPool2d> avgpool_;
  std::shared_ptr<Linear> fc_;
  Shape saved_pooled_shape_;  // avgpool's output, before flattening
  bool input_grad_ = true;
  bool winograd_ = true;       // what the convolutions were last told
  bool stem_frozen_ = false;   // conv1 and bn1 in the frozen prefix
  int64_t frozen_blocks_ = 0;  // blocks (in forward order) in the frozen prefix
  ChainCompiler prefix_compiler_;
  ChainRunner prefix_runner_;  // compiled for prefix_blocks_ blocks and prefix_versions_
  int64_t prefix_blocks_ = -1;
  std::vector<uint64_t> prefix_versions_;
};

}  // namespace resnet::nn
