#include "resnet/infer/calibration.h"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "resnet/core/error.h"
#include "resnet/infer/compiled_model.h"

namespace resnet::infer {

std::string Calibration::to_json() const {
  nlohmann::ordered_json j;
  j["images"] = images;
  j["max_abs"] = nlohmann::ordered_json::object();
  for (const auto& [name, v] : max_abs) j["max_abs"][name] = v;
  return j.dump();
}

Calibration Calibration::from_json(const std::string& text, const std::string& where) {
  Calibration c;
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    c.images = j.at("images").get<int64_t>();
    for (const auto& [name, v] : j.at("max_abs").items()) {
      const float f = v.get<float>();
      RESNET_CHECK(std::isfinite(f) && f >= 0,
                   where << ": calibration of '" << name
                         << "' expected a finite non-negative range, found " << f);
      c.max_abs[name] = f;
    }
  } catch (const nlohmann::json::exception& e) {
    RESNET_FAIL(where << ": int8 calibration is not valid JSON {images, max_abs}: " << e.what());
  }
  return c;
}

std::optional<Calibration> Calibration::from_graph(const Graph& graph) {
  Calibration c;
  for (const Value& v : graph.values)
    if (v.quant.has_value()) c.max_abs[v.name] = v.quant->max_abs();
  if (c.max_abs.empty()) return std::nullopt;
  return c;
}

namespace {
CompileOptions unfused() {
  CompileOptions o;
  o.fuse = false;
  return o;
}
}  // namespace

// Unfused: the ranges of every value, the fused plan's and those inside its fusions.
Calibrator::Calibrator(const Graph& graph)
    : model_(std::make_unique<CompiledModel>(graph, unfused())) {
  model_->set_observer([this](const std::string& name, const Tensor& t) {
    float& m = calibration_.max_abs[name];
    m = std::max(m, max_abs(t));
  });
}

Calibrator::~Calibrator() = default;

void Calibrator::observe(const Tensor& batch) {
  model_->run(batch);
  calibration_.images += batch.dim(0);
}

}  // namespace resnet::infer
