#include "resnet/api/model_loading.h"

#include <charconv>

#include "resnet/core/error.h"
#include "resnet/infer/lower_module.h"
#include "resnet/io/checkpoint.h"
#include "resnet/io/onnx.h"
#include "resnet/io/safetensors.h"

namespace resnet::api {

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

int64_t metadata_int(const io::SafetensorsFile& file, const std::string& path,
                     const std::string& key, int64_t fallback) {
  auto it = file.metadata.find(key);
  if (it == file.metadata.end()) return fallback;
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), v);
  RESNET_CHECK(ec == std::errc() && ptr == it->second.data() + it->second.size() && v > 0,
               path << ": metadata '" << key << "': expected a positive integer, got '"
                    << it->second << "'");
  return v;
}
}  // namespace

std::map<std::string, std::string> checkpoint_metadata(const LoadedModel& loaded) {
  return {{"model", loaded.name},
          {"num_classes", std::to_string(loaded.options.num_classes)},
          {"in_channels", std::to_string(loaded.options.in_channels)},
          {"shortcut", std::string(1, loaded.options.cifar_shortcut)},
          {"format", "resnet-checkpoint-1"}};
}

LoadedModel load_model(const std::string& model, const std::string& weights,
                       models::ModelOptions options) {
  LoadedModel loaded;
  std::string weights_path = weights;
  if (ends_with(model, ".safetensors")) {
    io::SafetensorsFile file = io::read_safetensors(model);
    auto it = file.metadata.find("model");
    RESNET_CHECK(it != file.metadata.end(),
                 model << ": expected __metadata__ naming the architecture (key 'model'); for a "
                          "bare state_dict "
                          "use --model NAME --weights "
                       << model);
    loaded.name = it->second;
    options.num_classes = metadata_int(file, model, "num_classes", options.num_classes);
    options.in_channels = metadata_int(file, model, "in_channels", options.in_channels);
    auto shortcut = file.metadata.find("shortcut");
    if (shortcut != file.metadata.end()) {
      RESNET_CHECK(
          shortcut->second == "A" || shortcut->second == "B",
          model << ": metadata 'shortcut': expected A or B, got '" << shortcut->second << "'");
      options.cifar_shortcut = shortcut->second[0];
    }
    if (weights_path.empty()) weights_path = model;
    // A quantized checkpoint (resnet quantize) carries its activation ranges.
    auto calibration = file.metadata.find("int8_calibration");
    if (calibration != file.metadata.end())
      loaded.calibration = std::make_shared<infer::Calibration>(
          infer::Calibration::from_json(calibration->second, model));
  } else {
    loaded.name = model;
  }
  loaded.options = models::resolve_options(loaded.name, options);
  loaded.module = models::build(loaded.name, options);
  if (!weights_path.empty()) io::load_state_dict(*loaded.module, weights_path, loaded.name);
  return loaded;
}

data::Preprocessing checkpoint_preprocessing(const train::CheckpointInfo& info) {
  // What the checkpoint's own evaluation ran during training.
  return train::eval_preprocessing(info);
}

std::optional<train::CheckpointInfo> recorded_checkpoint_info(const std::string& path) {
  if (!ends_with(path, ".safetensors")) return std::nullopt;
  return recorded_checkpoint_info(io::read_safetensors(path).metadata, path);
}

std::optional<train::CheckpointInfo> recorded_checkpoint_info(
    const std::map<std::string, std::string>& metadata, const std::string& path) {
  // A checkpoint written by resnet train records its input recipe and classes; one that
  // only names its architecture does not.
  if (!metadata.count("input_size")) return std::nullopt;
  return train::CheckpointInfo::from_metadata(metadata, path);
}

bool is_onnx_path(const std::string& path) {
  return ends_with(path, ".onnx");
}

InferenceModel load_inference_model(const std::string& model, const std::string& weights,
                                    const models::ModelOptions& options) {
  InferenceModel m;
  m.name = model;
  if (is_onnx_path(model)) {
    RESNET_CHECK(weights.empty(), "--weights: an ONNX file carries its weights; got --weights "
                                      << weights << " with " << model);
    m.graph = io::read_onnx(model);
    // The input channels: the declared input's, else the first convolution's; the
    // classes: the last layer's outputs.
    const Shape& declared = m.graph.values[0].shape;
    if (declared.size() == 4 && declared[1] != infer::kUnknownDim) m.in_channels = declared[1];
    for (const infer::Node& n : m.graph.nodes) {
      if (n.op == infer::OpKind::conv) {
        m.in_channels = n.params[0].value.dim(1) * n.window.groups;
        break;
      }
    }
    for (const infer::Node& n : m.graph.nodes)
      if (n.op == infer::OpKind::linear) m.num_classes = n.params[0].value.dim(0);
    // A quantized file (QDQ or QLinear ops) brings its own int8 grids.
    if (auto own = infer::Calibration::from_graph(m.graph))
      m.calibration = std::make_shared<infer::Calibration>(std::move(*own));
    return m;
  }
  LoadedModel loaded = load_model(model, weights, options);
  loaded.module->eval();
  m.graph = infer::lower_module(*loaded.module);
  m.name = loaded.name;
  m.in_channels = models::expected_in_channels(loaded.name, loaded.options);
  m.num_classes = loaded.options.num_classes;
  m.module = loaded.module;
  m.calibration = loaded.calibration;
  return m;
}

}  // namespace resnet::api
