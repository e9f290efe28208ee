#include "resnet/io/checkpoint.h"

#include <set>
#include <sstream>
#include <vector>

#include "resnet/core/error.h"
#include "resnet/io/safetensors.h"

namespace resnet::io {

namespace {

// How many names a message lists before "and N more": enough to recognise the other
// model, short enough for one line.
constexpr size_t kNamesShown = 4;

std::string some_names(const std::vector<std::string>& names) {
  std::ostringstream s;
  for (size_t i = 0; i < names.size() && i < kNamesShown; ++i)
    s << (i ? ", " : "") << "'" << names[i] << "'";
  if (names.size() > kNamesShown) s << " and " << names.size() - kNamesShown << " more";
  return s.str();
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// A state_dict saved from a torch.nn.DataParallel or DistributedDataParallel wrapper has
// every key under "module."; say so, since that is the usual cause of this mismatch.
std::string wrapper_hint(const std::vector<std::string>& unexpected,
                         const std::set<std::string>& expected) {
  if (unexpected.empty()) return "";
  for (const std::string& name : unexpected) {
    if (!starts_with(name, "module.") || !expected.count(name.substr(7))) return "";
  }
  return "; its keys carry the 'module.' prefix of a DataParallel wrapper: save "
         "model.module.state_dict() instead";
}

}  // namespace

void load_state_dict(nn::Module& module, const std::string& path, const std::string& model_name) {
  load_state_dict(module, path, LoadOptions{model_name, ""});
}

LoadReport load_state_dict(nn::Module& module, const std::string& path,
                           const LoadOptions& options) {
  SafetensorsFile file = read_safetensors(path);
  const std::string& model_name = options.model_name;
  const std::string model = model_name.empty() ? module.type_name() : model_name;
  auto state = module.state_dict();

  // Key sets first, all at once, so that a state_dict of another model is named as such
  // rather than by its first odd tensor.
  std::set<std::string> expected;
  std::vector<std::string> missing, unexpected;
  for (auto& [name, target] : state) {
    expected.insert(name);
    if (file.find(name) == nullptr) missing.push_back(name);
  }
  for (auto& [name, t] : file.tensors) {
    if (!expected.count(name)) unexpected.push_back(name);
  }
  if (missing.size() == 1 && unexpected.empty()) {
    const Tensor* target = nullptr;
    for (auto& [name, t] : state) {
      if (name == missing[0]) target = t;
    }
    RESNET_FAIL(path << ": missing tensor '" << missing[0] << "' (expected "
                     << dtype_name(target->dtype()) << target->shape_str() << ") for " << model);
  }
  if (missing.empty() && unexpected.size() == 1) {
    const Tensor* t = file.find(unexpected[0]);
    RESNET_FAIL(path << ": unexpected tensor '" << unexpected[0] << "' " << t->shape_str()
                     << " (not in the state_dict of " << model << ")");
  }
  RESNET_CHECK(
      missing.empty() && unexpected.empty(),
      path << ": expected the state_dict of " << model << " (" << state.size() << " tensors), got "
           << file.tensors.size() << " tensors: "
           << (missing.empty() ? std::string("none")
                               : std::to_string(missing.size()) + " (" + some_names(missing) + ")")
           << " missing, "
           << (unexpected.empty()
                   ? std::string("none")
                   : std::to_string(unexpected.size()) + " (" + some_names(unexpected) + ")")
           << " unexpected" << wrapper_hint(unexpected, expected)
           << "; is it the state_dict of another model?");

  // A new head whose shape differs from the file's keeps its own values, all of it.
  const std::string& head = options.new_head;
  auto in_head = [&](const std::string& name) {
    return !head.empty() && name.size() > head.size() && name.compare(0, head.size(), head) == 0 &&
           name[head.size()] == '.';
  };
  bool head_differs = false;
  for (auto& [name, target] : state) {
    if (in_head(name) && file.find(name)->shape() != target->shape()) head_differs = true;
  }
  LoadReport report;
  for (auto& [name, target] : state) {
    if (head_differs && in_head(name)) {
      report.reinitialised.push_back(name);
      continue;
    }
    const Tensor* found = file.find(name);
    RESNET_CHECK(found->shape() == target->shape(),
                 path << ": tensor '" << name << "': expected shape " << target->shape_str()
                      << " for " << model << ", got " << found->shape_str());
    if (target->dtype() == DType::i64) {
      RESNET_CHECK(found->dtype() == DType::i64, path << ": tensor '" << name
                                                      << "': expected dtype I64, got "
                                                      << dtype_name(found->dtype()));
    } else {
      // F64, F16 and BF16 in the file arrive here as f32 (safetensors.h).
      RESNET_CHECK(found->dtype() == DType::f32,
                   path << ": tensor '" << name
                        << "': expected a floating-point dtype (F32, F64, F16 or BF16), got "
                        << dtype_name(found->dtype()));
    }
  }
  for (auto& [name, target] : state) {
    if (head_differs && in_head(name)) continue;
    target->copy_from(*file.find(name));
    ++report.loaded;
  }
  return report;
}

void save_state_dict(nn::Module& module, const std::string& path,
                     const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (auto& [name, t] : module.state_dict()) tensors.emplace_back(name, *t);
  write_safetensors(path, tensors, metadata);
}

void save_gradients(nn::Module& module, const std::string& path) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (auto& [name, p] : module.named_parameters()) tensors.emplace_back(name, p->grad);
  write_safetensors(path, tensors);
}

}  // namespace resnet::io
