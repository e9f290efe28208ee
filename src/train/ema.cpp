#include "resnet/train/ema.h"

#include <cmath>
#include <map>

#include "resnet/core/error.h"

namespace resnet::train {

namespace {

void check_same_keys(std::vector<std::pair<std::string, Tensor*>>& a,
                     std::vector<std::pair<std::string, Tensor*>>& b) {
  RESNET_CHECK(a.size() == b.size(), "Ema: expected a network of the same architecture ("
                                         << b.size() << " state_dict entries), got " << a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    RESNET_CHECK(a[i].first == b[i].first && a[i].second->shape() == b[i].second->shape() &&
                     a[i].second->dtype() == b[i].second->dtype(),
                 "Ema: state_dict entry " << i << " differs: '" << a[i].first << "' "
                                          << a[i].second->shape_str() << " against '" << b[i].first
                                          << "' " << b[i].second->shape_str());
  }
}

}  // namespace

Ema::Ema(nn::ModulePtr shadow, nn::Module& model, double decay)
    : shadow_(std::move(shadow)), decay_(decay) {
  RESNET_CHECK(shadow_ != nullptr, "Ema: expected a network to hold the average");
  RESNET_CHECK(std::isfinite(decay) && decay >= 0.0 && decay < 1.0,
               "--ema: expected a decay in [0, 1), got " << decay);
  auto mine = shadow_->state_dict();
  auto theirs = model.state_dict();
  check_same_keys(mine, theirs);
  for (size_t i = 0; i < mine.size(); ++i) mine[i].second->copy_from(*theirs[i].second);
  shadow_->eval();
}

void Ema::update(nn::Module& model) {
  auto mine = shadow_->state_dict();
  auto theirs = model.state_dict();
  check_same_keys(mine, theirs);
  const auto keep = static_cast<float>(decay_), take = static_cast<float>(1.0 - decay_);
  for (size_t i = 0; i < mine.size(); ++i) {
    Tensor& e = *mine[i].second;
    const Tensor& v = *theirs[i].second;
    if (e.dtype() != DType::f32) {
      e.copy_from(v);
      continue;
    }
    float* pe = e.f32();
    const float* pv = v.f32();
    const int64_t n = e.numel();
    for (int64_t j = 0; j < n; ++j) pe[j] = keep * pe[j] + take * pv[j];
  }
}

std::vector<std::pair<std::string, Tensor>> Ema::state_tensors() {
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& [name, t] : shadow_->state_dict()) out.emplace_back(kPrefix + name, *t);
  return out;
}

void Ema::load_state(const std::vector<std::pair<std::string, Tensor>>& tensors) {
  const std::string prefix = kPrefix;
  std::map<std::string, const Tensor*> given;
  for (const auto& [key, t] : tensors)
    if (key.compare(0, prefix.size(), prefix) == 0) given[key.substr(prefix.size())] = &t;
  auto mine = shadow_->state_dict();
  for (auto& [name, target] : mine) {
    auto it = given.find(name);
    RESNET_CHECK(it != given.end(),
                 "EMA state: missing '" << prefix << name << "' (was the run saved with --ema?)");
    RESNET_CHECK(it->second->shape() == target->shape() && it->second->dtype() == target->dtype(),
                 "EMA state: '" << prefix << name << "': expected " << dtype_name(target->dtype())
                                << target->shape_str() << ", got "
                                << dtype_name(it->second->dtype()) << it->second->shape_str());
  }
  for (auto& [name, target] : mine) target->copy_from(*given[name]);
}

}  // namespace resnet::train
