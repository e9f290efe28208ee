#pragma once
// What several subcommands share: turning --model (a zoo name or a checkpoint path) and
// --weights into a ready module.

#include <CLI/CLI.hpp>

#include <map>
#include <string>

#include "resnet/infer/calibration.h"
#include "resnet/infer/graph.h"
#include "resnet/models/zoo.h"
#include "resnet/nn/module.h"

namespace resnet::cli {

struct LoadedModel {
  nn::ModulePtr module;
  std::string name;  // the zoo name it was built from
  models::ModelOptions options;
  // A quantized checkpoint's int8 calibration (see `resnet quantize`), else null.
  std::shared_ptr<const infer::Calibration> calibration;
};

// Adds --num-classes, --in-channels, --shortcut and --zero-init-residual to `cmd`.
void add_model_options(CLI::App* cmd, models::ModelOptions& options);

// MODEL is a zoo name, or a .safetensors checkpoint whose __metadata__ names its
// architecture ("model", "num_classes", "in_channels"). `weights` (optional) is then
// loaded strictly.
// The __metadata__ a checkpoint of `loaded` carries, so that it rebuilds with no flags.
std::map<std::string, std::string> checkpoint_metadata(const LoadedModel& loaded);

LoadedModel load_model(const std::string& model, const std::string& weights,
                       models::ModelOptions options);

// True for a path ending in .onnx.
bool is_onnx_path(const std::string& path);

// A model for inference only, from any MODEL spelling (zoo name, checkpoint, .onnx file)
// as an inference graph. `module` is null for ONNX files, which have no module tree.
struct InferenceModel {
  infer::Graph graph;
  std::string name;
  int64_t in_channels = 3;
  int64_t num_classes = 0;
  nn::ModulePtr module;
  std::shared_ptr<const infer::Calibration> calibration;
};
InferenceModel load_inference_model(const std::string& model, const std::string& weights,
                                    const models::ModelOptions& options);

}  // namespace resnet::cli
