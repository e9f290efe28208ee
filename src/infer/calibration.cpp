#include "resnet/infer/calibration.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

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
    // Kinds and ranges are checked before converting: a number beyond int64 or float
    // (1e300) would otherwise go through a conversion whose result is undefined.
    const nlohmann::json& images = j.at("images");
    RESNET_CHECK(images.is_number_unsigned(), where << ": int8 calibration 'images': expected "
                                                       "a non-negative integer, got "
                                                    << images.dump());
    RESNET_CHECK(images.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX),
                 where << ": int8 calibration 'images': " << images.dump() << " is too large");
    c.images = static_cast<int64_t>(images.get<uint64_t>());
    for (const auto& [name, v] : j.at("max_abs").items()) {
      const double d = v.get<double>();
      RESNET_CHECK(std::isfinite(d) && d >= 0 && d <= std::numeric_limits<float>::max(),
                   where << ": calibration of '" << name
                         << "' expected a finite non-negative range, found " << v.dump());
      c.max_abs[name] = static_cast<float>(d);
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
