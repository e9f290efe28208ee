#pragma once
// torchvision state_dict listings (tests/fixtures/interop/<model>.state_dict.json, written by
// tools/gen_interop_fixtures.py): every entry PyTorch's state_dict() holds, in its order, as
// [name, safetensors dtype, shape, fill rule]. From a listing alone a test writes the very
// file a user would get from saving torchvision's state_dict as safetensors, filled by the
// deterministic scheme, without PyTorch.

#include <cstdint>
#include <fstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "resnet/io/safetensors.h"
#include "support/deterministic_weights.h"

namespace resnet::testing {

struct ListedTensor {
  std::string name;
  std::string dtype;  // "F32" or "I64"
  Shape shape;
  std::string rule;  // a DETERMINISTIC_RULES name, or "num_batches_tracked"
};

inline std::string interop_fixture(const std::string& name) {
  return std::string(RESNET_FIXTURE_DIR) + "/interop/" + name;
}

inline std::vector<ListedTensor> read_state_dict_listing(const std::string& model) {
  const std::string path = interop_fixture(model + ".state_dict.json");
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  const nlohmann::json j = nlohmann::json::parse(in);
  std::vector<ListedTensor> entries;
  for (const auto& e : j.at("entries")) {
    entries.push_back({e.at(0).get<std::string>(), e.at(1).get<std::string>(), e.at(2).get<Shape>(),
                       e.at(3).get<std::string>()});
  }
  if (static_cast<int64_t>(entries.size()) != j.at("count").get<int64_t>())
    throw std::runtime_error(path + ": count disagrees with the entries");
  return entries;
}

// The listed tensors, in listing order, filled as torch_reference.fill_deterministic fills
// the torchvision model with `seed`.
inline std::vector<std::pair<std::string, Tensor>> listed_state_dict(
    const std::vector<ListedTensor>& entries, uint64_t seed) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const ListedTensor& e : entries) {
    if (e.rule == "num_batches_tracked") {
      if (e.dtype != "I64") throw std::runtime_error(e.name + ": expected I64");
      Tensor t(e.shape, DType::i64);
      for (int64_t i = 0; i < t.numel(); ++i) t.i64()[i] = 3;
      tensors.emplace_back(e.name, t);
      continue;
    }
    if (e.dtype != "F32") throw std::runtime_error(e.name + ": expected F32");
    Tensor t(e.shape);
    fill_by_rule(t, seed, e.name, rule_named(e.rule, e.shape));
    tensors.emplace_back(e.name, t);
  }
  return tensors;
}

}  // namespace resnet::testing
