#pragma once
// Turning a MODEL spelling (a zoo name, a checkpoint, an ONNX file) and optional weights
// into a ready module or inference graph: what the command line's --model and --weights
// mean, and what resnet::Model::load (api/model.h) does.

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "resnet/data/preprocess.h"
#include "resnet/infer/calibration.h"
#include "resnet/infer/graph.h"
#include "resnet/models/zoo.h"
#include "resnet/nn/module.h"
#include "resnet/train/checkpoint_info.h"

namespace resnet::api {

struct LoadedModel {
  nn::ModulePtr module;
  std::string name;  // the zoo name it was built from
  models::ModelOptions options;
  // A quantized checkpoint's int8 calibration (see `resnet quantize`), else null.
  std::shared_ptr<const infer::Calibration> calibration;
};

// The __metadata__ a checkpoint of `loaded` carries, so that it rebuilds with no flags.
std::map<std::string, std::string> checkpoint_metadata(const LoadedModel& loaded);

// MODEL is a zoo name, or a .safetensors checkpoint whose __metadata__ names its
// architecture ("model", "num_classes", "in_channels"). `weights` (optional) is then
// loaded strictly.
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

// A trained checkpoint's own input recipe: its channels, resized to its input size as the
// trainer's image folders resize, normalized with its training set's statistics.
data::Preprocessing checkpoint_preprocessing(const train::CheckpointInfo& info);

// What a .safetensors file written by `resnet train` (or resnet::Model::save after
// training) records about its inputs and classes; nullopt for a bare state_dict or a
// checkpoint that only names its architecture.
std::optional<train::CheckpointInfo> recorded_checkpoint_info(const std::string& path);
// The same from a file's __metadata__ already read; `path` names the file in errors.
std::optional<train::CheckpointInfo> recorded_checkpoint_info(
    const std::map<std::string, std::string>& metadata, const std::string& path);

}  // namespace resnet::api
