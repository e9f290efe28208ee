#include "resnet/train/fine_tune.h"

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "resnet/core/error.h"
#include "resnet/io/checkpoint.h"
#include "resnet/io/file_digest.h"
#include "resnet/nn/freeze.h"

namespace resnet::train {

InitOrigin load_init_weights(nn::Module& model, const std::string& path,
                             const std::string& model_name) {
  InitOrigin origin;
  origin.file_name = std::filesystem::path(path).filename().string();
  origin.sha256 = io::sha256_file(path);
  const io::LoadReport report =
      io::load_state_dict(model, path, io::LoadOptions{model_name, kHeadModule});
  std::string reinit;
  for (const auto& name : report.reinitialised) reinit += (reinit.empty() ? "" : ", ") + name;
  std::printf(
      "init: loaded %lld tensors from %s%s\n", static_cast<long long>(report.loaded),
      origin.file_name.c_str(),
      reinit.empty() ? "" : ("; re-initialised " + reinit + " (another class count)").c_str());
  return origin;
}

int64_t apply_freeze(nn::Module& model, const std::string& spec) {
  if (spec.empty()) return 0;
  const int64_t frozen = nn::freeze(model, spec);
  const auto total = static_cast<int64_t>(model.named_parameters().size());
  RESNET_CHECK(frozen < total, "--freeze " << spec << " freezes all " << total
                                           << " parameter tensors: nothing would train");
  int64_t frozen_values = 0, values = 0;
  for (auto& [name, p] : model.named_parameters()) {
    values += p->value.numel();
    if (!p->requires_grad) frozen_values += p->value.numel();
  }
  std::printf("freeze: %lld of %lld parameter tensors (%lld of %lld values) under %s\n",
              static_cast<long long>(frozen), static_cast<long long>(total),
              static_cast<long long>(frozen_values), static_cast<long long>(values), spec.c_str());
  return frozen;
}

void apply_lr_backbone(Sgd& sgd, nn::Module& model, double factor) {
  RESNET_CHECK(std::isfinite(factor) && factor >= 0.0,
               "--lr-backbone: expected a finite factor >= 0, got " << factor);
  if (factor == 1.0) return;
  int64_t scaled = 0;
  for (auto& [name, p] : model.named_parameters()) {
    if (nn::is_under(name, kHeadModule)) continue;
    sgd.set_lr_multiplier(name, factor);
    ++scaled;
  }
  std::printf("lr-backbone: %lld parameter tensors outside %s at %g x the lr\n",
              static_cast<long long>(scaled), kHeadModule, factor);
}

}  // namespace resnet::train
