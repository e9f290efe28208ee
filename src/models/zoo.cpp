#include "resnet/models/zoo.h"

#include <charconv>

#include "resnet/core/error.h"
#include "resnet/nn/residual_block.h"
#include "resnet/nn/resnet.h"

#include <map>

namespace resnet::models {

namespace {

struct BlockSpec {
  int64_t in = 0, out = 0, stride = 1;
};

std::string join_known() {
  std::string s;
  for (const auto& n : known_names()) s += (s.empty() ? "" : ", ") + n;
  return s;
}

// "block:IN,OUT[,STRIDE]" with positive integers.
BlockSpec parse_block(const std::string& name) {
  std::vector<int64_t> values;
  std::string rest = name.substr(6);
  size_t pos = 0;
  while (pos <= rest.size()) {
    size_t comma = rest.find(',', pos);
    std::string item =
        rest.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    int64_t v = 0;
    auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    RESNET_CHECK(ec == std::errc() && ptr == item.data() + item.size() && v > 0 && v <= (1 << 20),
                 "model '" << name
                           << "': expected block:IN,OUT[,STRIDE] with positive integers, got '"
                           << item << "'");
    values.push_back(v);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  RESNET_CHECK(values.size() == 2 || values.size() == 3,
               "model '" << name << "': expected block:IN,OUT[,STRIDE], got " << values.size()
                         << " numbers");
  return {values[0], values[1], values.size() == 3 ? values[2] : 1};
}

using Block = nn::ResNetConfig::Block;

// torchvision 0.14, torchvision/models/resnet.py: block, depths, groups, width per group.
struct TorchvisionSpec {
  Block block;
  std::vector<int64_t> layers;
  int64_t groups = 1, width_per_group = 64;
};
const std::vector<std::pair<std::string, TorchvisionSpec>>& torchvision_table() {
  static const std::vector<std::pair<std::string, TorchvisionSpec>> table = {
      {"resnet18", {Block::basic, {2, 2, 2, 2}}},
      {"resnet34", {Block::basic, {3, 4, 6, 3}}},
      {"resnet50", {Block::bottleneck, {3, 4, 6, 3}}},
      {"resnet101", {Block::bottleneck, {3, 4, 23, 3}}},
      {"resnet152", {Block::bottleneck, {3, 8, 36, 3}}},
      {"resnext50_32x4d", {Block::bottleneck, {3, 4, 6, 3}, 32, 4}},
      {"resnext101_32x8d", {Block::bottleneck, {3, 4, 23, 3}, 32, 8}},
      {"resnext101_64x4d", {Block::bottleneck, {3, 4, 23, 3}, 64, 4}},
      {"wide_resnet50_2", {Block::bottleneck, {3, 4, 6, 3}, 1, 128}},
      {"wide_resnet101_2", {Block::bottleneck, {3, 4, 23, 3}, 1, 128}},
  };
  return table;
}

// He et al. 2015, section 4.2: depth 6n + 2, n blocks in each of 3 stages.
const std::vector<int64_t>& cifar_depths() {
  static const std::vector<int64_t> depths = {20, 32, 44, 56, 110, 1202};
  return depths;
}

bool parse_cifar(const std::string& name, const std::string& prefix, int64_t* depth) {
  if (name.rfind(prefix, 0) != 0) return false;
  const std::string rest = name.substr(prefix.size());
  for (int64_t d : cifar_depths()) {
    if (rest == std::to_string(d)) {
      *depth = d;
      return true;
    }
  }
  return false;
}

nn::ModulePtr build_cifar(int64_t depth, bool plain, const ModelOptions& options) {
  RESNET_CHECK(options.cifar_shortcut == 'A' || options.cifar_shortcut == 'B',
               "--shortcut: expected A or B, got '" << options.cifar_shortcut << "'");
  nn::ResNetConfig c;
  c.type_name = "CifarResNet";
  c.stem = nn::ResNetConfig::Stem::cifar;
  c.block = plain ? Block::plain : Block::basic;
  c.shortcut = options.cifar_shortcut == 'A' ? nn::ResNetConfig::Shortcut::zero_pad
                                             : nn::ResNetConfig::Shortcut::projection;
  const int64_t n = (depth - 2) / 6;
  c.layers = {n, n, n};
  c.planes = {16, 32, 64};
  c.in_channels = options.in_channels;
  c.num_classes = options.num_classes;
  c.zero_init_residual = options.zero_init_residual && !plain;
  return std::make_shared<nn::ResNet>(c);
}

}  // namespace

std::vector<std::string> known_names() {
  std::vector<std::string> names = {"block:IN,OUT[,STRIDE]"};
  for (const auto& [name, spec] : torchvision_table()) names.push_back(name);
  for (int64_t d : cifar_depths()) names.push_back("resnet" + std::to_string(d));
  for (int64_t d : cifar_depths())
    if (d != 1202) names.push_back("plain" + std::to_string(d));
  return names;
}

ModelOptions resolve_options(const std::string& name, ModelOptions options) {
  int64_t depth = 0;
  const bool cifar = parse_cifar(name, "resnet", &depth) || parse_cifar(name, "plain", &depth);
  if (options.num_classes == 0) options.num_classes = cifar ? 10 : 1000;
  return options;
}

nn::ModulePtr build(const std::string& name, const ModelOptions& requested) {
  const ModelOptions options = resolve_options(name, requested);
  if (name.rfind("block:", 0) == 0) {
    BlockSpec b = parse_block(name);
    return std::make_shared<nn::ResidualBlock>(b.in, b.out, b.stride);
  }
  for (const auto& [tv_name, spec] : torchvision_table()) {
    if (name != tv_name) continue;
    nn::ResNetConfig c;
    c.block = spec.block;
    c.layers = spec.layers;
    c.groups = spec.groups;
    c.width_per_group = spec.width_per_group;
    c.in_channels = options.in_channels;
    c.num_classes = options.num_classes;
    c.zero_init_residual = options.zero_init_residual;
    return std::make_shared<nn::ResNet>(c);
  }
  int64_t depth = 0;
  if (parse_cifar(name, "resnet", &depth)) return build_cifar(depth, false, options);
  if (parse_cifar(name, "plain", &depth) && depth != 1202) return build_cifar(depth, true, options);
  RESNET_FAIL("unknown model '" << name << "' (known: " << join_known() << ")");
}

int64_t expected_in_channels(const std::string& name, const ModelOptions& options) {
  if (name.rfind("block:", 0) == 0) return parse_block(name).in;
  return options.in_channels;
}

}  // namespace resnet::models
