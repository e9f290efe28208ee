#include "resnet/train/sgd.h"

#include <cmath>
#include <map>

#include "resnet/core/error.h"

namespace resnet::train {
namespace {

void check_options(const SgdOptions& o) {
  RESNET_CHECK(std::isfinite(o.lr) && o.lr >= 0.0, "Sgd: expected a finite lr >= 0, got " << o.lr);
  RESNET_CHECK(std::isfinite(o.momentum) && o.momentum >= 0.0,
               "Sgd: expected a finite momentum >= 0, got " << o.momentum);
  RESNET_CHECK(std::isfinite(o.dampening), "Sgd: expected a finite dampening, got " << o.dampening);
  RESNET_CHECK(std::isfinite(o.weight_decay) && o.weight_decay >= 0.0,
               "Sgd: expected a finite weight_decay >= 0, got " << o.weight_decay);
  RESNET_CHECK(!o.nesterov || (o.momentum > 0.0 && o.dampening == 0.0),
               "Sgd: Nesterov momentum requires a momentum > 0 and zero dampening, got momentum "
                   << o.momentum << " and dampening " << o.dampening);
}

}  // namespace

bool is_bn_or_bias(const std::string& name, const Tensor& value) {
  const std::string suffix = ".bias";
  const bool bias_name =
      name == "bias" || (name.size() > suffix.size() &&
                         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0);
  return bias_name || value.rank() <= 1;
}

Sgd::Sgd(std::vector<std::pair<std::string, nn::Parameter*>> params, SgdOptions options)
    : options_(options) {
  check_options(options_);
  std::map<std::string, bool> seen;
  for (auto& [name, param] : params) {
    RESNET_CHECK(!name.empty(), "Sgd: expected non-empty parameter names");
    RESNET_CHECK(param != nullptr, "Sgd: parameter '" << name << "' is null");
    RESNET_CHECK(!seen[name], "Sgd: parameter '" << name << "' is given twice");
    seen[name] = true;
    RESNET_CHECK(param->value.defined() && param->value.dtype() == DType::f32,
                 "Sgd: parameter '" << name << "': expected a defined f32 tensor");
    const bool decays = options_.decay_bn_and_bias || !is_bn_or_bias(name, param->value);
    slots_.push_back({name, param, decays, 1.0, Tensor()});
  }
}

Sgd::Sgd(nn::Module& model, SgdOptions options) : Sgd(model.named_parameters(), options) {}

void Sgd::set_lr(double lr) {
  RESNET_CHECK(std::isfinite(lr) && lr >= 0.0, "Sgd: expected a finite lr >= 0, got " << lr);
  options_.lr = lr;
}

bool Sgd::decays(const std::string& name) const {
  for (const Slot& slot : slots_) {
    if (slot.name == name) return slot.decays;
  }
  return false;
}

void Sgd::set_lr_multiplier(const std::string& name, double multiplier) {
  RESNET_CHECK(
      std::isfinite(multiplier) && multiplier >= 0.0,
      "Sgd: expected a finite lr multiplier >= 0 for '" << name << "', got " << multiplier);
  for (Slot& slot : slots_) {
    if (slot.name == name) {
      slot.lr_multiplier = multiplier;
      return;
    }
  }
  RESNET_FAIL("Sgd: no parameter named '" << name << "' (for its lr multiplier)");
}

void Sgd::step() {
  for (Slot& slot : slots_) update(slot);
}

void Sgd::zero_grad() {
  for (Slot& slot : slots_) {
    if (slot.param->grad.defined()) slot.param->grad.fill(0.f);
  }
}

void Sgd::update(Slot& slot) {
  Tensor& value = slot.param->value;
  const Tensor& grad = slot.param->grad;
  if (!grad.defined() || !slot.param->requires_grad) return;
  RESNET_CHECK(grad.dtype() == DType::f32 && grad.shape() == value.shape(),
               "Sgd: gradient of '" << slot.name << "': expected f32 " << value.shape_str()
                                    << ", got " << dtype_name(grad.dtype()) << " "
                                    << grad.shape_str());
  // PyTorch casts each scalar to the tensor's type and rounds after every operation.
  const float wd = slot.decays ? static_cast<float>(options_.weight_decay) : 0.f;
  const float momentum = static_cast<float>(options_.momentum);
  const float keep = static_cast<float>(1.0 - options_.dampening);
  const float neg_lr = static_cast<float>(-(options_.lr * slot.lr_multiplier));
  const int64_t n = value.numel();
  float* p = value.f32();
  const float* g = grad.f32();
  float* buf = nullptr;
  bool first = false;
  if (options_.momentum != 0.0) {
    first = !slot.momentum_buffer.defined();
    if (first) slot.momentum_buffer = Tensor(value.shape());
    buf = slot.momentum_buffer.f32();
  }
  for (int64_t i = 0; i < n; ++i) {
    float d = g[i];
    if (wd != 0.f) d = d + wd * p[i];
    if (buf != nullptr) {
      if (first) {
        buf[i] = d;
      } else {
        buf[i] = buf[i] * momentum;
        buf[i] = buf[i] + keep * d;
      }
      d = options_.nesterov ? d + momentum * buf[i] : buf[i];
    }
    p[i] = p[i] + neg_lr * d;
  }
}

std::vector<std::pair<std::string, Tensor>> Sgd::state_tensors() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const Slot& slot : slots_) {
    if (slot.momentum_buffer.defined()) {
      out.emplace_back(kBufferPrefix + slot.name, slot.momentum_buffer);
    }
  }
  return out;
}

void Sgd::load_state(const std::vector<std::pair<std::string, Tensor>>& tensors) {
  const std::string prefix = kBufferPrefix;
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < slots_.size(); ++i) index[slots_[i].name] = i;
  std::vector<Tensor> buffers(slots_.size());
  size_t found = 0;
  for (const auto& [key, t] : tensors) {
    if (key.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string name = key.substr(prefix.size());
    auto it = index.find(name);
    RESNET_CHECK(it != index.end(), "Sgd state: '" << key << "' names no parameter of this "
                                                   << "optimizer (it has " << slots_.size()
                                                   << " parameters)");
    const Slot& slot = slots_[it->second];
    RESNET_CHECK(slot.param->requires_grad,
                 "Sgd state: '" << key << "' is the buffer of a frozen parameter (is --freeze "
                                << "the same as the run that saved it?)");
    RESNET_CHECK(!buffers[it->second].defined(), "Sgd state: '" << key << "' is given twice");
    RESNET_CHECK(t.defined() && t.dtype() == DType::f32,
                 "Sgd state: '" << key << "': expected dtype f32, got "
                                << (t.defined() ? dtype_name(t.dtype()) : "an undefined tensor"));
    RESNET_CHECK(t.shape() == slot.param->value.shape(),
                 "Sgd state: '" << key << "': expected shape " << slot.param->value.shape_str()
                                << " (the parameter's), got " << t.shape_str());
    buffers[it->second] = t.clone();
    ++found;
  }
  if (found != 0) {
    size_t trainable = 0;
    for (const Slot& slot : slots_) trainable += slot.param->requires_grad ? 1 : 0;
    for (size_t i = 0; i < slots_.size(); ++i) {
      RESNET_CHECK(buffers[i].defined() || !slots_[i].param->requires_grad,
                   "Sgd state: missing '" << prefix << slots_[i].name << "' (the state has "
                                          << found << " of " << trainable << " momentum buffers)");
    }
  }
  for (size_t i = 0; i < slots_.size(); ++i) slots_[i].momentum_buffer = std::move(buffers[i]);
}

}  // namespace resnet::train
