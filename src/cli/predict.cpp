// resnet predict: the most likely classes of image files under a trained checkpoint or a
// zoo model with weights (a torchvision state_dict, say).

#include <algorithm>
#include <cmath>
#include <functional>
#include <iomanip>
#include <iostream>
#include <numeric>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "command.h"
#include "inference.h"
#include "model_loading.h"
#include "resnet/api/prediction.h"
#include "resnet/core/error.h"
#include "resnet/data/label_file.h"
#include "resnet/data/preprocess.h"
#include "resnet/infer/compiled_model.h"
#include "resnet/train/checkpoint_info.h"

namespace resnet::cli {

namespace {

struct PredictArgs {
  std::string checkpoint, model, weights, preprocess, labels, dtype;
  std::vector<std::string> images;
  int64_t top_k = 0;  // 0: min(5, classes)
  bool json = false;
  models::ModelOptions options;
};

// What predict needs of a model, whatever it was loaded from: a function from a plain
// [N, C, H, W] f32 batch to [N, classes] logits, and what the model file says about its
// inputs and classes. Another kind of model file only has to fill this in.
struct Classifier {
  std::function<Tensor(const Tensor&)> forward;
  std::string name;  // for messages and the JSON report
  std::string dtype = "f32";
  int64_t in_channels = 3;
  int64_t num_classes = 0;
  std::vector<std::string> class_names;         // empty: unknown
  std::optional<data::Preprocessing> recorded;  // the recipe the model file records, if any
  bool outputs_probabilities = false;           // an ONNX graph ending in Softmax
};

// `dtype` as --dtype gave it; empty: as eval runs it by default, int8 for a quantized
// checkpoint (one with a calibration, see resnet quantize), else f32.
Classifier from_module(nn::ModulePtr module, const std::string& name, int64_t in_channels,
                       int64_t num_classes, const std::string& dtype,
                       std::shared_ptr<const infer::Calibration> calibration = nullptr) {
  module->eval();
  Classifier c;
  c.dtype = !dtype.empty() ? dtype : calibration ? "int8" : "f32";
  Forward forward = make_forward(*module, c.dtype, std::move(calibration));
  c.forward = [module, forward](const Tensor& x) { return forward(x); };
  c.name = name;
  c.in_channels = in_channels;
  c.num_classes = num_classes;
  return c;
}

Classifier open_classifier(const PredictArgs& a) {
  RESNET_CHECK(a.checkpoint.empty() != a.model.empty(),
               "predict: expected exactly one of --checkpoint C and --model MODEL, got "
                   << (a.model.empty() ? "neither" : "both"));
  if (!a.checkpoint.empty()) {
    RESNET_CHECK(a.weights.empty(),
                 "--weights: expected it only with --model, got it with --checkpoint");
    train::TrainedModel m = train::load_trained_model(a.checkpoint);
    std::shared_ptr<const infer::Calibration> calibration;
    if (!m.int8_calibration.empty())
      calibration = std::make_shared<infer::Calibration>(
          infer::Calibration::from_json(m.int8_calibration, a.checkpoint));
    Classifier c = from_module(m.module, a.checkpoint, m.info.options.in_channels,
                               m.info.options.num_classes, a.dtype, calibration);
    c.class_names = m.info.class_names;
    c.recorded = api::checkpoint_preprocessing(m.info);
    return c;
  }
  if (is_onnx_path(a.model)) {
    // An ONNX file: the compiled graph; ImageNet preprocessing unless told otherwise.
    InferenceModel m = load_inference_model(a.model, a.weights, a.options);
    // A quantized file runs in int8 unless told otherwise, as a quantized checkpoint does.
    const std::string dtype = !a.dtype.empty() ? a.dtype : m.calibration ? "int8" : "f32";
    const bool probabilities = infer::outputs_probabilities(m.graph);
    auto compiled = std::make_shared<infer::CompiledModel>(std::move(m.graph),
                                                           compile_options(dtype, m.calibration));
    if (!compiled->fallback_note().empty()) std::cerr << compiled->fallback_note() << "\n";
    Classifier c;
    c.dtype = dtype;
    c.forward = [compiled](const Tensor& x) { return compiled->run(x); };
    c.name = a.model;
    c.in_channels = m.in_channels;
    c.num_classes = m.num_classes;
    c.outputs_probabilities = probabilities;
    return c;
  }
  const std::optional<train::CheckpointInfo> info = api::recorded_checkpoint_info(a.model);
  if (!info && !a.model.ends_with(".safetensors")) {
    RESNET_CHECK(!a.weights.empty(), "--weights: expected a state_dict (.safetensors) with --model "
                                         << a.model
                                         << ", got none (a zoo model alone has random weights)");
  }
  LoadedModel loaded = load_model(a.model, a.weights, a.options);
  const models::ModelOptions& o = loaded.options;
  Classifier c = from_module(loaded.module, a.model, models::expected_in_channels(loaded.name, o),
                             o.num_classes, a.dtype, loaded.calibration);
  if (info) {
    c.class_names = info->class_names;
    c.recorded = api::checkpoint_preprocessing(*info);
  }
  return c;
}

// --preprocess, or the default: the model file's own recipe, else ImageNet's.
data::Preprocessing choose_preprocessing(const PredictArgs& a, const Classifier& c) {
  return resnet::choose_preprocessing(a.preprocess, c.recorded, c.in_channels, c.name);
}

void run_predict(const PredictArgs& a) {
  Classifier c = open_classifier(a);
  const int64_t classes = c.num_classes;
  const int64_t k = a.top_k > 0 ? a.top_k : std::min<int64_t>(5, classes);
  RESNET_CHECK(k <= classes, "--top-k: expected at most " << classes << " (the classes of "
                                                          << c.name << "), got " << k);
  std::vector<std::string> names = c.class_names;
  if (!a.labels.empty()) names = data::read_label_file(a.labels, classes);
  if (names.empty()) {
    for (int64_t i = 0; i < classes; ++i) names.push_back(std::to_string(i));
  }
  const data::Preprocessing prep = choose_preprocessing(a, c);

  // Every image is read before anything is printed, so a bad file fails the command
  // without leaving half a report.
  nlohmann::ordered_json predictions = nlohmann::ordered_json::array();
  std::ostringstream text;
  text << std::fixed << std::setprecision(4);
  for (const std::string& path : a.images) {
    const Tensor image = data::preprocess_image(path, prep);
    const Tensor logits = c.forward(image.reshape({1, image.dim(0), image.dim(1), image.dim(2)}));
    RESNET_CHECK(logits.rank() == 2 && logits.dim(0) == 1 && logits.dim(1) == classes,
                 c.name << ": expected logits [1, " << classes << "], got " << logits.shape_str());
    const std::vector<double> p =
        class_probabilities(logits.f32(), classes, c.outputs_probabilities);
    nlohmann::ordered_json top = nlohmann::ordered_json::array();
    text << path << "\n";
    for (int64_t i : top_classes(p, k)) {
      top.push_back({{"class", names[i]}, {"index", i}, {"probability", p[i]}});
      text << "  " << p[i] << "  " << names[i] << "\n";
    }
    predictions.push_back({{"image", path}, {"top", top}});
  }
  if (a.json) {
    nlohmann::ordered_json j;
    if (!a.checkpoint.empty()) j["checkpoint"] = a.checkpoint;
    j["model"] = c.name;
    j["dtype"] = c.dtype;
    j["preprocess"] = prep.name;
    j["top_k"] = k;
    j["predictions"] = predictions;
    std::cout << j.dump() << "\n";
  } else {
    std::cout << text.str();
  }
}

}  // namespace

void add_predict_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "predict", "Most likely classes of PNG/JPEG images under a trained checkpoint or a model");
  auto a = std::make_shared<PredictArgs>();
  cmd->add_option("--checkpoint", a->checkpoint,
                  "A checkpoint written by resnet train (.safetensors)");
  cmd->add_option("--model", a->model,
                  "Zoo name (with --weights) or .safetensors checkpoint, instead of --checkpoint");
  cmd->add_option("--weights", a->weights,
                  "state_dict for --model as .safetensors (e.g. a torchvision one; strict load)");
  cmd->add_option("IMAGE", a->images, "PNG or JPEG files")->required();
  cmd->add_option("--preprocess", a->preprocess,
                  "imagenet: resize shorter side to 256, center crop 224, ImageNet "
                  "normalization; checkpoint: the checkpoint's input size and normalization; "
                  "none: the image as is, scaled to [0, 1] (default: checkpoint when the model "
                  "file records one, else imagenet)")
      ->check(CLI::IsMember({"imagenet", "checkpoint", "none"}));
  cmd->add_option("--labels", a->labels,
                  "Class names, one per line, as many as the model has classes");
  cmd->add_option("--top-k", a->top_k, "Classes to print per image (default: 5, or all when fewer)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--dtype", a->dtype,
                  "Precision: f32 (the module tree), bf16 or int8 (compiled graph); default int8 "
                  "for a quantized checkpoint, else f32")
      ->check(CLI::IsMember({"f32", "bf16", "int8"}));
  cmd->add_flag("--json", a->json, "Print one JSON object");
  add_model_options(cmd, a->options);
  cmd->callback([a] { run_predict(*a); });
}

}  // namespace resnet::cli
