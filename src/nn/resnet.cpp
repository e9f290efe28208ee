#include "resnet/nn/resnet.h"

#include "resnet/backend/eltwise.h"
#include "resnet/core/error.h"
#include "resnet/nn/basic_block.h"
#include "resnet/nn/bottleneck.h"
#include "resnet/nn/init.h"
#include "resnet/nn/residual_unit.h"
#include "resnet/nn/zero_pad_shortcut.h"

namespace resnet::nn {

namespace {
int64_t expansion(ResNetConfig::Block b) {
  return b == ResNetConfig::Block::bottleneck ? Bottleneck::kExpansion : 1;
}
}  // namespace

ResNet::ResNet(const ResNetConfig& c) : Module(c.type_name), config_(c) {
  RESNET_CHECK(!c.layers.empty() && c.layers.size() == c.planes.size(),
               c.type_name << ": expected as many stage depths as stage widths, got "
                           << c.layers.size() << " and " << c.planes.size());
  RESNET_CHECK(c.in_channels > 0 && c.num_classes > 0,
               c.type_name << ": expected positive in_channels and num_classes, got "
                           << c.in_channels << " and " << c.num_classes);
  RESNET_CHECK(
      c.block == ResNetConfig::Block::bottleneck || (c.groups == 1 && c.width_per_group == 64),
      "BasicBlock only supports groups=1 and base_width=64");
  const bool imagenet = c.stem == ResNetConfig::Stem::imagenet;
  inplanes_ = c.planes.front();
  conv1_ = register_module("conv1", std::make_shared<Conv2d>(Conv2dOptions::square(
                                        c.in_channels, inplanes_, imagenet ? 7 : 3,
                                        imagenet ? 2 : 1, imagenet ? 3 : 1, false)));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(inplanes_));
  conv1_->set_output_layout(Layout::blocked16);
  relu_ = register_module("relu", std::make_shared<ReLU>(true));
  bn1_->set_fused_relu(true, relu_.get());
  if (imagenet) {
    maxpool_ = register_module("maxpool", std::make_shared<MaxPool2d>(3, 2, 1));
    // The max-pool keeps its indices, not its input: bn1 need not keep its output. Nor
    // its input: backward runs the stem convolution again on the image it keeps (about
    // 3% of resnet50's forward multiply-adds, 7% of resnet18's) for 98 MiB at batch 32.
    bn1_->set_recompute_output(true);
    bn1_->set_keeps_input(false);
  }
  for (size_t i = 0; i < c.layers.size(); ++i) {
    auto layer = make_layer(c.planes[i], c.layers[i], i == 0 ? 1 : 2);
    layers_.push_back(register_module("layer" + std::to_string(i + 1), layer));
  }
  avgpool_ = register_module("avgpool", std::make_shared<AdaptiveAvgPool2d>(1, 1));
  fc_ = register_module(
      "fc", std::make_shared<Linear>(c.planes.back() * expansion(c.block), c.num_classes));
  initialize();
}

std::shared_ptr<Sequential> ResNet::make_layer(int64_t planes, int64_t blocks, int64_t stride) {
  const auto& c = config_;
  const int64_t out = planes * expansion(c.block);
  auto layer = std::make_shared<Sequential>();
  for (int64_t i = 0; i < blocks; ++i) {
    const int64_t s = i == 0 ? stride : 1;
    ModulePtr downsample;
    if (c.block != ResNetConfig::Block::plain && (s != 1 || inplanes_ != out)) {
      if (c.shortcut == ResNetConfig::Shortcut::zero_pad) {
        downsample = std::make_shared<ZeroPadShortcut>(inplanes_, out, s);
      } else {
        downsample = std::make_shared<Sequential>(std::vector<ModulePtr>{
            std::make_shared<Conv2d>(Conv2dOptions::square(inplanes_, out, 1, s, 0, false)),
            std::make_shared<BatchNorm2d>(out)});
      }
    }
    switch (c.block) {
      case ResNetConfig::Block::basic:
        layer->push_back(std::make_shared<BasicBlock>(inplanes_, planes, s, downsample));
        break;
      case ResNetConfig::Block::plain:
        layer->push_back(std::make_shared<BasicBlock>(inplanes_, planes, s, nullptr, true));
        break;
      case ResNetConfig::Block::bottleneck:
        layer->push_back(std::make_shared<Bottleneck>(inplanes_, planes, s, downsample, c.groups,
                                                      c.width_per_group));
        break;
    }
    inplanes_ = out;
  }
  return layer;
}

void ResNet::initialize() {
  // torchvision: kaiming_normal_(mode="fan_out", nonlinearity="relu") for every conv,
  // BN weight 1 and bias 0 (their defaults), Linear left at PyTorch's default.
  for (auto& [name, m] : named_modules()) {
    if (auto* conv = dynamic_cast<Conv2d*>(m)) init::kaiming_normal_fan_out_(conv->weight().value);
  }
  if (config_.zero_init_residual) {
    for (auto& [name, m] : named_modules())
      if (auto* unit = dynamic_cast<ResidualUnit*>(m)) unit->last_bn().weight().value.fill(0.f);
  }
}

Tensor ResNet::forward_reference(const Tensor& x) {
  Tensor h = relu_->forward(bn1_->forward(conv1_->forward(x)));
  if (maxpool_) h = maxpool_->forward(h);
  for (auto& layer : layers_) h = layer->forward(h);
  h = avgpool_->forward(h);
  return fc_->forward(h.reshape({h.dim(0), h.dim(1)}));
}

namespace {
// Winograd's rounding error is about ten times direct convolution's, and a batch norm
// over few values per channel amplifies whatever error reaches it: its batch standard
// deviation can be far smaller than its inputs. Training resnet50 on 2x3x64x64 (8 values
// per channel in layer4) with Winograd put 90 of 483 gradients and buffers outside the
// numerics contract against PyTorch's float64 (up to 12 times PyTorch's own float32
// error), at 2x3x128x128 (32 values) 6; without Winograd none. Forward errors of the
// early, well-populated stages reach the deep ones too, so the rule is the network's:
// Winograd only when every batch norm sees at least this many values per channel.
// (resnet50 at batch 32 and 224 pixels: 1568; ResNet-20 at batch 128 on 28x28: 6272.)
constexpr int64_t kMinBnValuesForWinograd = 256;
}  // namespace

int64_t ResNet::deepest_bn_values(const Shape& input) const {
  int64_t h = input[2], w = input[3];
  auto through = [&](const Conv2d& conv) {
    const backend::Conv2dConfig c = to_backend_config(conv.options());
    h = c.out_h(h);
    w = c.out_w(w);
  };
  through(*conv1_);
  if (maxpool_) {  // a max-pool's output size is a convolution's of its kernel and stride
    backend::Conv2dConfig pool;
    pool.kernel_h = pool.kernel_w = maxpool_->kernel_size();
    pool.stride_h = pool.stride_w = maxpool_->stride();
    pool.pad_h = pool.pad_w = maxpool_->padding();
    h = pool.out_h(h);
    w = pool.out_w(w);
  }
  for (auto& layer : layers_)
    for (size_t i = 0; i < layer->size(); ++i)
      if (auto* unit = dynamic_cast<ResidualUnit*>(&(*layer)[i]))
        for (auto& [conv, bn] : unit->main_path()) through(*conv);
  return input[0] * h * w;
}

void ResNet::apply_winograd_policy(const Shape& input) {
  const bool winograd = deepest_bn_values(input) >= kMinBnValuesForWinograd;
  if (winograd == winograd_) return;
  for (auto& [name, m] : named_modules())
    if (auto* conv = dynamic_cast<Conv2d*>(m)) conv->set_winograd(winograd);
  winograd_ = winograd;
}

Tensor ResNet::forward_impl(const Tensor& x) {
  RESNET_CHECK(
      x.rank() == 4 && x.dim(1) == config_.in_channels,
      who() << ": expected input [N, " << config_.in_channels << ", H, W], got " << x.shape_str());
  if (!keeps_for_backward()) return forward_reference(x);
  // Training (and gradient) path: conv1 turns the plain image into blocked16
  // activations, which flow through every block without reorders; bn1 carries the
  // stem's ReLU. The max-pool reads and writes blocked16 too; the global pool reads plain.
  apply_frozen_prefix();
  apply_winograd_policy(x.shape());
  Tensor h;
  if (stem_frozen_) {
    h = backend::to_layout(forward_frozen_prefix(x), Layout::blocked16);
  } else {
    h = bn1_->forward(conv1_->forward(x));
    if (maxpool_) h = maxpool_->forward(h);  // blocked16 in and out
  }
  // The trainable blocks, after the frozen prefix. A layer holding the boundary runs
  // block by block, in forward and in backward.
  int64_t first = 0;
  for (auto& layer : layers_) {
    const auto size = static_cast<int64_t>(layer->size());
    if (first >= frozen_blocks_) {
      h = layer->forward(h);
    } else {
      for (int64_t i = frozen_blocks_ - first; i < size; ++i)
        h = (*layer)[static_cast<size_t>(i)].forward(h);
    }
    first += size;
  }
  h = avgpool_->forward(backend::to_layout(h, Layout::plain));
  saved_pooled_shape_ = h.shape();
  return fc_->forward(h.reshape({h.dim(0), h.dim(1)}));
}

Tensor ResNet::backward_impl(const Tensor& grad_output) {
  Tensor g = fc_->backward(grad_output);
  if (!g.defined()) return Tensor();  // every block frozen
  g = backend::to_layout(avgpool_->backward(g.reshape(saved_pooled_shape_)), Layout::blocked16);
  int64_t end = 0;
  for (auto& layer : layers_) end += static_cast<int64_t>(layer->size());
  for (auto it = layers_.rbegin(); it != layers_.rend() && g.defined(); ++it) {
    const auto size = static_cast<int64_t>((*it)->size());
    const int64_t first = end - size;
    end = first;
    if (first >= frozen_blocks_) {
      g = (*it)->backward(g);  // its lowest trainable block returns no gradient
    } else {
      // The layer holding the boundary: its trainable blocks, down to the lowest.
      for (int64_t i = size - 1; i >= 0 && first + i >= frozen_blocks_; --i)
        g = (*(*it))[static_cast<size_t>(i)].backward(g);
      g = Tensor();
    }
  }
  if (!g.defined() || stem_frozen_) return Tensor();  // stopped at the frozen prefix
  if (maxpool_) {
    g = maxpool_->backward(g);
    if (!bn1_->keeps_input()) bn1_->supply_input(conv1_->recompute_output());
  }
  g = bn1_->backward(g);
  if (!input_grad_) {
    conv1_->backward_weights_only(g);
    return Tensor();
  }
  return conv1_->backward(g);
}

namespace {
bool all_frozen(Module& m) {
  for (auto& [name, p] : m.named_parameters())
    if (p->requires_grad) return false;
  return true;
}
}  // namespace

void ResNet::apply_frozen_prefix() {
  stem_frozen_ = !input_grad_ && all_frozen(*conv1_) && all_frozen(*bn1_);
  std::vector<Module*> blocks;
  for (auto& layer : layers_)
    for (size_t i = 0; i < layer->size(); ++i) blocks.push_back(&(*layer)[i]);
  frozen_blocks_ = 0;
  if (stem_frozen_) {
    while (frozen_blocks_ < static_cast<int64_t>(blocks.size()) &&
           all_frozen(*blocks[static_cast<size_t>(frozen_blocks_)]))
      ++frozen_blocks_;
  }
  auto set_eval = [](Module& m) {
    if (m.is_training()) m.eval();
  };
  if (stem_frozen_) {
    set_eval(*conv1_);
    set_eval(*bn1_);
    set_eval(*relu_);
    if (maxpool_) set_eval(*maxpool_);
  }
  for (size_t i = 0; i < blocks.size(); ++i) {
    const auto index = static_cast<int64_t>(i);
    if (index < frozen_blocks_) set_eval(*blocks[i]);
    // The lowest trainable block needs no input gradient. (Every block of a ResNet is a
    // ResidualUnit: BasicBlock, Bottleneck or their plain twin.)
    if (auto* unit = dynamic_cast<ResidualUnit*>(blocks[i]))
      unit->set_input_grad(!(stem_frozen_ && index == frozen_blocks_));
  }
  // Whole layers in the prefix are not called for backward: eval mode keeps them idle.
  int64_t first = 0;
  for (auto& layer : layers_) {
    const auto size = static_cast<int64_t>(layer->size());
    if (first + size <= frozen_blocks_) set_eval(*layer);
    first += size;
  }
  const bool all_blocks = stem_frozen_ && frozen_blocks_ == static_cast<int64_t>(blocks.size());
  if (all_blocks) set_eval(*avgpool_);
  fc_->set_input_grad(!all_blocks);
}

ModuleChain ResNet::frozen_prefix_chain() {
  ModuleChain chain = {{"conv1", conv1_.get()}, {"bn1", bn1_.get()}, {"relu", relu_.get()}};
  if (maxpool_) chain.emplace_back("maxpool", maxpool_.get());
  int64_t index = 0;
  for (size_t l = 0; l < layers_.size(); ++l)
    for (size_t i = 0; i < layers_[l]->size() && index < frozen_blocks_; ++i, ++index)
      chain.emplace_back("layer" + std::to_string(l + 1) + "." + std::to_string(i),
                         &(*layers_[l])[i]);
  return chain;
}

std::vector<uint64_t> ResNet::frozen_prefix_versions() {
  std::vector<uint64_t> versions;
  for (auto& [name, m] : frozen_prefix_chain())
    for (auto& [key, t] : m->state_dict()) versions.push_back(t->version());
  return versions;
}

Tensor ResNet::forward_frozen_prefix(const Tensor& x) {
  if (prefix_compiler_ && !forward_observed()) {
    if (!prefix_runner_ || prefix_blocks_ != frozen_blocks_ ||
        prefix_versions_ != frozen_prefix_versions()) {
      prefix_runner_ = nullptr;  // the old plan's memory goes before the new one's comes
      prefix_runner_ = prefix_compiler_(frozen_prefix_chain());
      prefix_blocks_ = frozen_blocks_;
    }
    Tensor h = prefix_runner_(x);
    prefix_versions_ = frozen_prefix_versions();
    return h;
  }
  // The reference: the prefix's modules, in eval mode (apply_frozen_prefix), run
  // themselves without gradients.
  GradEnabledGuard no_grad(false);
  Tensor h = x;
  for (auto& [name, m] : frozen_prefix_chain()) h = m->forward(h);
  return h;
}

}  // namespace resnet::nn
