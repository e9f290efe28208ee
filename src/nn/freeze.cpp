#include "resnet/nn/freeze.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "resnet/core/error.h"

namespace resnet::nn {

namespace {
constexpr const char* kBackbone = "backbone";
constexpr const char* kHead = "fc";
}  // namespace

bool is_under(const std::string& name, const std::string& module_path) {
  return name.size() > module_path.size() &&
         name.compare(0, module_path.size(), module_path) == 0 && name[module_path.size()] == '.';
}

std::vector<std::string> resolve_freeze_spec(Module& model, const std::string& spec) {
  std::vector<std::string> paths;
  if (spec.empty()) return paths;
  std::set<std::string> modules;
  for (auto& [name, m] : model.named_modules()) modules.insert(name);
  std::string top;
  for (auto& [name, child] : model.named_children()) top += (top.empty() ? "" : ", ") + name;
  std::stringstream s(spec);
  for (std::string item; std::getline(s, item, ',');) {
    RESNET_CHECK(
        !item.empty(),
        "--freeze: expected comma-separated module paths, got an empty one in '" << spec << "'");
    std::vector<std::string> named;
    if (item == kBackbone) {
      for (auto& [name, child] : model.named_children())
        if (name != kHead) named.push_back(name);
    } else {
      RESNET_CHECK(modules.count(item), "--freeze: '"
                                            << item << "' is no module of " << model.type_name()
                                            << " (expected 'backbone' or a path under " << top
                                            << ", e.g. 'layer1' or 'layer3.2')");
      named.push_back(item);
    }
    for (auto& n : named)
      if (std::find(paths.begin(), paths.end(), n) == paths.end()) paths.push_back(n);
  }
  return paths;
}

int64_t freeze(Module& model, const std::string& spec) {
  const std::vector<std::string> paths = resolve_freeze_spec(model, spec);
  int64_t frozen = 0;
  for (auto& [name, p] : model.named_parameters()) {
    for (const auto& path : paths)
      if (is_under(name, path)) p->requires_grad = false;
    if (!p->requires_grad) ++frozen;
  }
  return frozen;
}

}  // namespace resnet::nn
