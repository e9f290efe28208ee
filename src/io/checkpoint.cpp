#include "resnet/io/checkpoint.h"

#include <set>

#include "resnet/core/error.h"
#include "resnet/io/safetensors.h"

namespace resnet::io {

void load_state_dict(nn::Module& module, const std::string& path) {
  SafetensorsFile file = read_safetensors(path);
  std::set<std::string> expected;
  for (auto& [name, target] : module.state_dict()) {
    expected.insert(name);
    const Tensor* found = file.find(name);
    RESNET_CHECK(found != nullptr, path << ": missing tensor '" << name << "' (expected "
                                        << dtype_name(target->dtype()) << target->shape_str()
                                        << ")");
    RESNET_CHECK(found->shape() == target->shape(),
                 path << ": tensor '" << name << "': expected shape " << target->shape_str()
                      << ", got " << found->shape_str());
    if (target->dtype() == DType::i64) {
      RESNET_CHECK(found->dtype() == DType::i64, path << ": tensor '" << name
                                                      << "': expected dtype I64, got "
                                                      << dtype_name(found->dtype()));
    } else {
      RESNET_CHECK(found->dtype() == DType::f32, path << ": tensor '" << name
                                                      << "': expected a floating-point dtype, got "
                                                      << dtype_name(found->dtype()));
    }
    target->copy_from(*found);
  }
  for (auto& [name, t] : file.tensors) {
    RESNET_CHECK(expected.count(name), path << ": unexpected tensor '" << name << "' "
                                            << t.shape_str() << " (not in the model's state_dict)");
  }
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
