#pragma once
// Deterministic weights and inputs, generated bit for bit the same here and in
// tools/deterministic_values.py (fill_deterministic, deterministic_tensor), so that fixtures for
// whole networks (tens of millions of parameters) need store neither weights nor inputs.
// Change both sides together.
//
// The scheme, for a tensor named `name` (its state_dict key, or "input", "grad_output"):
//   key     = seed XOR fnv1a64(name)           FNV-1a 64 over the bytes of name
//   z_i     = mix(key + (i + 1) * 0x9E3779B97F4A7C15)   (mod 2^64): output i of splitmix64
//             seeded with key; mix(z): z ^= z >> 30; z *= 0xBF58476D1CE4E5B9;
//             z ^= z >> 27; z *= 0x94D049BB133111EB; z ^= z >> 31
//   u_i     = (z_i >> 40) * 2^-24              uniform in [0, 1), 24 bits
//   value_i = float((c0 + c1 * u_i + (u_i < 1/2 ? -gap : gap)) * scale)
//             the sum is exact in double, then one rounded multiply and one rounding
// with i the flat row-major index. Fill rule per state_dict entry:
//   conv / linear weight (rank >= 2)   U(-1, 1) * sqrt(3 / fan_in), fan_in = numel / dim 0
//   conv / linear bias                 U(-0.1, 0.1)
//   BatchNorm weight                   U[0.5, 1)
//   BatchNorm bias                     U[-2, -1) or U[1, 2), either with probability 1/2
//   last BN of a residual branch       weight 0.2 * U[0.5, 1), bias U[0.5, 1)
//   BN on a residual block's shortcut  weight U[0.5, 1), bias U[0.5, 1)
//   running_mean                       U(-0.25, 0.25)
//   running_var                        0.5 + 1.5 * U[0, 1)
//   num_batches_tracked                3
//   inputs (deterministic_tensor)      U(-1, 1)
// ONNX initializers (onnx_initializer_rule) are filled by name and rank alone, since an
// export need not keep the module tree (folded BN biases are named "onnx::Conv_123"):
//   rank >= 2                          U(-1, 1) * sqrt(3 / fan_in), as a weight above
//   rank 1 named "*running_mean"       as running_mean above
//   rank 1 named "*running_var"        as running_var above
//   rank 1 named "*.weight"            as a BatchNorm weight above (U[0.5, 1))
//   rank 1 named "*.bias"              as a BatchNorm bias above (also a classifier's bias)
//   any other rank 1                   U(-0.1, 0.1) (a folded convolution's bias)
// Rank-1 weights are always BN scales (conv and linear weights have rank >= 2), and where
// torch shares one initializer among BN parameters of equal value (Identity nodes), the
// variances share with scales only, so every variance stays positive.
// A BatchNorm is recognised by a sibling "<prefix>.running_mean". The last BN of a residual
// branch is the child "bnK" with the largest K of a module of type BasicBlock, Bottleneck or
// ResidualBlock (not PlainBlock); its shortcut is its child "downsample" or "shortcut".
// These values keep ReLU inputs and max-pool runners-up away from their kinks, so that two
// float32 implementations agree to the numerics contract even in training mode: see
// tools/deterministic_values.py for the reasons and the measurements.

#include <cmath>
#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "resnet/models/zoo.h"
#include "resnet/nn/module.h"
#include "resnet/tensor/tensor.h"

namespace resnet::testing {

inline uint64_t fnv1a64(std::string_view text) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001B3ull;
  }
  return h;
}

// Output `index` (0-based) of splitmix64 seeded with `key`.
inline uint64_t splitmix64_at(uint64_t key, uint64_t index) {
  uint64_t z = key + (index + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// value = float((c0 + c1 * u + (u < 1/2 ? -gap : gap)) * scale); c0, c1 and gap must keep
// the sum exact in double.
struct FillRule {
  double c0 = -1.0, c1 = 2.0, gap = 0.0, scale = 1.0;  // default: U(-1, 1)
};

inline float deterministic_value(uint64_t key, uint64_t index, const FillRule& rule) {
  const double u = static_cast<double>(splitmix64_at(key, index) >> 40) * 0x1p-24;
  const double exact = rule.c0 + rule.c1 * u + (u < 0.5 ? -rule.gap : rule.gap);  // no rounding
  return static_cast<float>(exact * rule.scale);
}

// Fills an f32 tensor by `rule` from (seed, name).
inline void fill_by_rule(Tensor& t, uint64_t seed, const std::string& name, const FillRule& rule) {
  const uint64_t key = seed ^ fnv1a64(name);
  float* p = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i)
    p[i] = deterministic_value(key, static_cast<uint64_t>(i), rule);
}

// A U(-1, 1) tensor named `name` ("input", "grad_output"), as torch_reference's
// deterministic_tensor(seed, name, shape).
inline Tensor deterministic_tensor(uint64_t seed, const std::string& name, Shape shape) {
  Tensor t(std::move(shape));
  fill_by_rule(t, seed, name, FillRule{});
  return t;
}

enum class BnRole { plain, residual, shortcut };

// BN prefixes that feed a residual block's sum, with their role: the last "bnK" child of a
// BasicBlock, Bottleneck or ResidualBlock ("residual"), every BN under its "downsample" or
// "shortcut" child ("shortcut").
inline std::map<std::string, BnRole> residual_bn_roles(nn::Module& root) {
  static const std::set<std::string> kResidualTypes = {"BasicBlock", "Bottleneck", "ResidualBlock"};
  auto join = [](const std::string& a, const std::string& b) {
    return a.empty() ? b : b.empty() ? a : a + "." + b;
  };
  std::vector<std::pair<std::string, nn::Module*>> modules = {{"", &root}};
  for (auto& entry : root.named_modules()) modules.push_back(entry);
  std::map<std::string, BnRole> roles;
  for (auto& [prefix, module] : modules) {
    if (!kResidualTypes.count(module->type_name())) continue;
    long best = -1;
    std::string best_child;
    for (auto& [child_name, child] : module->named_children()) {
      if (child_name == "downsample" || child_name == "shortcut") {
        if (child->type_name() == "BatchNorm2d") roles[join(prefix, child_name)] = BnRole::shortcut;
        for (auto& [sub_name, sub] : child->named_modules())
          if (sub->type_name() == "BatchNorm2d")
            roles[join(join(prefix, child_name), sub_name)] = BnRole::shortcut;
        continue;
      }
      if (child_name.size() < 3 || child_name.compare(0, 2, "bn") != 0 ||
          child->type_name() != "BatchNorm2d")
        continue;
      const std::string digits = child_name.substr(2);
      if (digits.find_first_not_of("0123456789") != std::string::npos) continue;
      const long k = std::stol(digits);
      if (k > best) best = k, best_child = child_name;
    }
    if (best >= 0) roles[join(prefix, best_child)] = BnRole::residual;
  }
  return roles;
}

// Overwrites every state_dict entry of `module` by the scheme above. Throws
// std::invalid_argument for an entry no rule covers.
inline void fill_deterministic(nn::Module& module, uint64_t seed) {
  auto state = module.state_dict();
  std::set<std::string> names;
  for (auto& [name, t] : state) names.insert(name);
  const std::map<std::string, BnRole> roles = residual_bn_roles(module);
  for (auto& [name, t] : state) {
    const size_t dot = name.rfind('.');
    const std::string prefix = dot == std::string::npos ? "" : name.substr(0, dot);
    const std::string leaf = dot == std::string::npos ? name : name.substr(dot + 1);
    const bool is_bn = names.count(prefix.empty() ? "running_mean" : prefix + ".running_mean");
    const auto role_it = roles.find(prefix);
    const BnRole role = role_it == roles.end() ? BnRole::plain : role_it->second;
    if (leaf == "num_batches_tracked") {
      if (t->dtype() != DType::i64)
        throw std::invalid_argument("fill_deterministic: " + name + ": expected i64");
      for (int64_t i = 0; i < t->numel(); ++i) t->i64()[i] = 3;
      continue;
    }
    FillRule rule;
    if (leaf == "weight" && is_bn) {
      rule = {0.5, 0.5, 0.0, role == BnRole::residual ? 0.2 : 1.0};
    } else if (leaf == "bias" && is_bn) {
      rule = role == BnRole::plain ? FillRule{-1.0, 2.0, 1.0, 1.0} : FillRule{0.5, 0.5, 0.0, 1.0};
    } else if (leaf == "weight") {
      if (t->rank() < 2)
        throw std::invalid_argument("fill_deterministic: weight '" + name + "' has rank " +
                                    std::to_string(t->rank()) + ", expected >= 2");
      const int64_t fan_in = t->numel() / t->dim(0);
      rule = {-1.0, 2.0, 0.0, std::sqrt(3.0 / static_cast<double>(fan_in))};
    } else if (leaf == "bias") {
      rule = {-1.0, 2.0, 0.0, 0.1};
    } else if (leaf == "running_mean") {
      rule = {-0.5, 1.0, 0.0, 0.5};
    } else if (leaf == "running_var") {
      rule = {0.5, 1.5, 0.0, 1.0};
    } else {
      throw std::invalid_argument("fill_deterministic: no rule for state_dict entry '" + name +
                                  "' of shape " + t->shape_str());
    }
    fill_by_rule(*t, seed, name, rule);
  }
}

// The fill rule called `rule` in tools/deterministic_values.py's DETERMINISTIC_RULES (the names
// a state_dict listing records: "weight", "bn_bias", "residual_bn_weight", ...), for a
// tensor of `shape`. Throws std::invalid_argument for an unknown name.
inline FillRule rule_named(const std::string& rule, const Shape& shape) {
  if (rule == "weight") {
    if (shape.size() < 2) throw std::invalid_argument("rule_named: weight of rank < 2");
    int64_t fan_in = 1;
    for (size_t i = 1; i < shape.size(); ++i) fan_in *= shape[i];
    return {-1.0, 2.0, 0.0, std::sqrt(3.0 / static_cast<double>(fan_in))};
  }
  if (rule == "bias") return {-1.0, 2.0, 0.0, 0.1};
  if (rule == "bn_weight" || rule == "shortcut_bn_weight") return {0.5, 0.5, 0.0, 1.0};
  if (rule == "bn_bias") return {-1.0, 2.0, 1.0, 1.0};
  if (rule == "residual_bn_weight") return {0.5, 0.5, 0.0, 0.2};
  if (rule == "residual_bn_bias" || rule == "shortcut_bn_bias") return {0.5, 0.5, 0.0, 1.0};
  if (rule == "running_mean") return {-0.5, 1.0, 0.0, 0.5};
  if (rule == "running_var") return {0.5, 1.5, 0.0, 1.0};
  if (rule == "input") return {};
  throw std::invalid_argument("rule_named: unknown rule '" + rule + "'");
}

// The fill rule of the ONNX initializer `name` of shape `shape` (see the scheme above);
// throws std::invalid_argument for a scalar.
inline FillRule onnx_initializer_rule(const std::string& name, const Shape& shape) {
  auto ends_with = [&](std::string_view suffix) {
    return name.size() >= suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (shape.size() >= 2) {
    int64_t numel = 1;
    for (int64_t d : shape) numel *= d;
    const int64_t fan_in = shape[0] > 0 ? numel / shape[0] : 1;
    return {-1.0, 2.0, 0.0, std::sqrt(3.0 / static_cast<double>(fan_in))};
  }
  if (shape.size() != 1)
    throw std::invalid_argument("onnx_initializer_rule: '" + name + "' is a scalar");
  if (ends_with("running_mean")) return {-0.5, 1.0, 0.0, 0.5};
  if (ends_with("running_var")) return {0.5, 1.5, 0.0, 1.0};
  if (ends_with(".weight")) return {0.5, 0.5, 0.0, 1.0};
  if (ends_with(".bias")) return {-1.0, 2.0, 1.0, 1.0};
  return {-1.0, 2.0, 0.0, 0.1};
}

// A zoo network with `in_channels` inputs and 10 classes, filled by the scheme above.
inline nn::ModulePtr deterministic_model(const std::string& name, int64_t in_channels,
                                         uint64_t seed) {
  models::ModelOptions o;
  o.in_channels = in_channels;
  o.num_classes = 10;
  nn::ModulePtr m = models::build(name, o);
  fill_deterministic(*m, seed);
  return m;
}

}  // namespace resnet::testing
