// Lowering walks the module tree in forward order. Containers (Sequential, ResNet) run
// their children in registration order, which torchvision's forward follows too, except
// that ResNet flattens before its classifier. Every module is recognized by its class,
// never by its type or child names: a ResidualUnit (BasicBlock, Bottleneck, PlainBlock)
// says its own main path and shortcut; in the seed's ResidualBlock the Conv2d/BatchNorm2d
// children form the main path and the one other non-ReLU child is the shortcut.
// Errors name the module by its path in the model ("layer3.2.bn1: expected ...").
#include "resnet/infer/lower_module.h"

#include <optional>
#include <string>
#include <vector>

#include "resnet/core/error.h"
#include "resnet/nn/adaptive_avgpool2d.h"
#include "resnet/nn/batchnorm2d.h"
#include "resnet/nn/conv2d.h"
#include "resnet/nn/flatten.h"
#include "resnet/nn/linear.h"
#include "resnet/nn/maxpool2d.h"
#include "resnet/nn/relu.h"
#include "resnet/nn/residual_block.h"
#include "resnet/nn/residual_unit.h"
#include "resnet/nn/resnet.h"
#include "resnet/nn/sequential.h"
#include "resnet/nn/zero_pad_shortcut.h"

namespace resnet::infer {

namespace {

std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

// "lowering: layer3.2.bn1 (BatchNorm2d)"; the model itself is named by its type.
std::string where(nn::Module& m, const std::string& path) {
  return "lowering: " + (path.empty() ? m.type_name() : path + " (" + m.type_name() + ")");
}

class Lowering {
 public:
  explicit Lowering(Graph& g) : g_(g) {}

  int lower(nn::Module& m, const std::string& path, int x) {
    if (auto* conv = dynamic_cast<nn::Conv2d*>(&m)) return lower_conv(*conv, path, x);
    if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(&m)) return lower_bn(*bn, path, x);
    if (dynamic_cast<nn::ReLU*>(&m)) return simple(OpKind::relu, path, x);
    if (auto* pool = dynamic_cast<nn::MaxPool2d*>(&m)) return lower_maxpool(*pool, path, x);
    if (auto* pool = dynamic_cast<nn::AdaptiveAvgPool2d*>(&m)) {
      RESNET_CHECK(pool->out_h() == 1 && pool->out_w() == 1,
                   where(m, path) << ": expected an AdaptiveAvgPool2d to 1x1 (the one with an "
                                  << "inference graph op), found output " << pool->out_h() << "x"
                                  << pool->out_w());
      return simple(OpKind::global_avg_pool, path, x);
    }
    if (dynamic_cast<nn::Flatten*>(&m)) return simple(OpKind::flatten, path, x);
    if (auto* fc = dynamic_cast<nn::Linear*>(&m)) return lower_linear(*fc, path, x);
    if (auto* zp = dynamic_cast<nn::ZeroPadShortcut*>(&m)) return lower_zero_pad(*zp, path, x);
    if (auto* unit = dynamic_cast<nn::ResidualUnit*>(&m)) return lower_unit(*unit, path, x);
    if (auto* block = dynamic_cast<nn::ResidualBlock*>(&m)) return lower_block(*block, path, x);
    if (dynamic_cast<nn::Sequential*>(&m)) {
      for (auto& [name, child] : m.named_children()) x = lower(*child, join(path, name), x);
      return x;
    }
    if (dynamic_cast<nn::ResNet*>(&m)) {
      for (auto& [name, child] : m.named_children()) {
        if (dynamic_cast<nn::Linear*>(child.get())) x = simple(OpKind::flatten, "flatten", x);
        x = lower(*child, join(path, name), x);
      }
      return x;
    }
    RESNET_FAIL(where(m, path) << ": expected a module with an inference graph op, found a "
                               << m.type_name());
  }

 private:
  int simple(OpKind op, const std::string& path, int x) {
    Node n;
    n.op = op;
    n.name = path;
    n.inputs = {x};
    return g_.add_node(std::move(n));
  }

  int lower_conv(nn::Conv2d& conv, const std::string& path, int x) {
    const nn::Conv2dOptions& o = conv.options();
    Node n;
    n.op = OpKind::conv;
    n.name = path;
    n.inputs = {x};
    Window& w = n.window;
    w.kernel_h = o.kernel_h, w.kernel_w = o.kernel_w;
    w.stride_h = o.stride_h, w.stride_w = o.stride_w;
    w.pad_t = w.pad_b = o.pad_h;
    w.pad_l = w.pad_r = o.pad_w;
    w.dilation_h = o.dilation_h, w.dilation_w = o.dilation_w;
    w.groups = o.groups;
    n.params.push_back({join(path, "weight"), conv.weight().value});
    if (conv.bias()) n.params.push_back({join(path, "bias"), conv.bias()->value});
    return g_.add_node(std::move(n));
  }

  int lower_bn(nn::BatchNorm2d& bn, const std::string& path, int x) {
    Node n;
    n.op = OpKind::batch_norm;
    n.name = path;
    n.inputs = {x};
    n.eps = bn.options().eps;
    n.params = {{join(path, "weight"), bn.weight().value},
                {join(path, "bias"), bn.bias().value},
                {join(path, "running_mean"), bn.running_mean()},
                {join(path, "running_var"), bn.running_var()}};
    return g_.add_node(std::move(n));
  }

  int lower_maxpool(nn::MaxPool2d& pool, const std::string& path, int x) {
    Node n;
    n.op = OpKind::max_pool;
    n.name = path;
    n.inputs = {x};
    Window& w = n.window;
    w.kernel_h = w.kernel_w = pool.kernel_size();
    w.stride_h = w.stride_w = pool.stride();
    w.pad_t = w.pad_l = w.pad_b = w.pad_r = pool.padding();
    return g_.add_node(std::move(n));
  }

  int lower_linear(nn::Linear& fc, const std::string& path, int x) {
    Node n;
    n.op = OpKind::linear;
    n.name = path;
    n.inputs = {x};
    n.params.push_back({join(path, "weight"), fc.weight().value});
    if (fc.bias()) n.params.push_back({join(path, "bias"), fc.bias()->value});
    return g_.add_node(std::move(n));
  }

  int lower_zero_pad(nn::ZeroPadShortcut& zp, const std::string& path, int x) {
    if (zp.stride() > 1) {
      Node s;
      s.op = OpKind::subsample;
      s.name = join(path, "subsample");
      s.inputs = {x};
      s.window.stride_h = s.window.stride_w = zp.stride();
      x = g_.add_node(std::move(s));
    }
    if (zp.out_channels() == zp.in_channels()) return x;
    Node p;
    p.op = OpKind::pad_channels;
    p.name = join(path, "pad");
    p.inputs = {x};
    p.pads = {zp.pad_front(), zp.out_channels() - zp.in_channels() - zp.pad_front()};
    return g_.add_node(std::move(p));
  }

  // The module a shortcut runs, or none for the identity.
  struct Shortcut {
    nn::Module* module = nullptr;
    std::string path;
  };

  // "layer3.2.conv1": the path of `child`, a child of the module at `path`.
  static std::string child_path(nn::Module& parent, const nn::Module* child,
                                const std::string& path) {
    for (auto& [name, c] : parent.named_children())
      if (c.get() == child) return join(path, name);
    RESNET_FAIL(where(parent, path) << ": expected its main path and shortcut among its "
                                       "registered children, found a module that is not");
  }

  int lower_unit(nn::ResidualUnit& unit, const std::string& path, int x) {
    std::vector<std::pair<std::string, nn::Module*>> main_path;
    for (auto [conv, bn] : unit.main_path()) {
      main_path.emplace_back(child_path(unit, conv, path), conv);
      main_path.emplace_back(child_path(unit, bn, path), bn);
    }
    std::optional<Shortcut> shortcut;
    if (unit.has_shortcut()) {
      shortcut = Shortcut{};
      if (nn::Module* d = unit.downsample()) shortcut = Shortcut{d, child_path(unit, d, path)};
    }
    return lower_residual(unit, path, main_path, shortcut, x);
  }

  // Conv2d/BatchNorm2d children in registration order, the ReLU (applied twice) implied,
  // the other child the shortcut.
  int lower_block(nn::ResidualBlock& block, const std::string& path, int x) {
    std::vector<std::pair<std::string, nn::Module*>> main_path;
    std::optional<Shortcut> shortcut;
    for (auto& [name, child] : block.named_children()) {
      nn::Module* m = child.get();
      if (dynamic_cast<nn::ReLU*>(m)) continue;
      if (dynamic_cast<nn::Conv2d*>(m) || dynamic_cast<nn::BatchNorm2d*>(m)) {
        main_path.emplace_back(join(path, name), m);
        continue;
      }
      RESNET_CHECK(!shortcut, where(*m, join(path, name))
                                  << ": expected one shortcut in a ResidualBlock, found "
                                  << shortcut->path << " already");
      shortcut = Shortcut{m, join(path, name)};
    }
    RESNET_CHECK(shortcut, where(block, path) << ": expected a shortcut child, found none");
    return lower_residual(block, path, main_path, shortcut, x);
  }

  // conv/BN pairs with a ReLU after every BN but the last; the shortcut (if any) added; a
  // ReLU.
  int lower_residual(nn::Module& unit, const std::string& path,
                     const std::vector<std::pair<std::string, nn::Module*>>& main_path,
                     const std::optional<Shortcut>& shortcut, int x) {
    const int input = x;
    RESNET_CHECK(!main_path.empty() && main_path.size() % 2 == 0,
                 where(unit, path) << ": expected conv/BN pairs on the main path, found "
                                   << main_path.size() << " module(s)");
    for (size_t i = 0; i < main_path.size(); ++i) {
      const auto& [child_path, child] = main_path[i];
      const bool want_conv = i % 2 == 0;
      RESNET_CHECK(want_conv ? dynamic_cast<nn::Conv2d*>(child) != nullptr
                             : dynamic_cast<nn::BatchNorm2d*>(child) != nullptr,
                   where(*child, child_path)
                       << ": expected a " << (want_conv ? "Conv2d" : "BatchNorm2d")
                       << " at this place of the main path");
      x = lower(*child, child_path, x);
      const bool last = i + 1 == main_path.size();
      if (!want_conv && !last)
        x = simple(OpKind::relu, join(path, "relu" + std::to_string(i / 2 + 1)), x);
    }
    if (shortcut) {
      // An empty Sequential (the seed's identity) lowers to its input.
      const int residual =
          shortcut->module ? lower(*shortcut->module, shortcut->path, input) : input;
      Node add;
      add.op = OpKind::add;
      add.name = join(path, "add");
      add.inputs = {x, residual};
      x = g_.add_node(std::move(add));
    }
    return simple(OpKind::relu, join(path, "relu"), x);
  }

  Graph& g_;
};

}  // namespace

Graph lower_module(nn::Module& model) {
  Graph g;
  g.add_value("input");
  g.output = Lowering(g).lower(model, "", 0);
  g.values[g.output].name = "output";
  g.validate();
  return g;
}

Graph lower_chain(const std::vector<std::pair<std::string, nn::Module*>>& chain) {
  RESNET_CHECK(!chain.empty(), "lowering: expected at least one module in the chain, got none");
  Graph g;
  g.add_value("input");
  Lowering lowering(g);
  int x = 0;
  for (const auto& [path, module] : chain) x = lowering.lower(*module, path, x);
  g.output = x;
  g.values[g.output].name = "output";
  g.validate();
  return g;
}

}  // namespace resnet::infer
