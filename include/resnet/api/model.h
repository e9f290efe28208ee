#pragma once
// resnet::Model: the library's front door for the three things programs do with a network.
//
//   Build or load one and run it in f32, bf16 or int8:
//     resnet::Model model = resnet::Model::load("resnet50", {.weights = "resnet50.safetensors"});
//     resnet::infer::CompiledModel net = model.compile(resnet::Precision::bf16);
//     resnet::Tensor logits = net.run(batch);       // plain [N, C, H, W] f32 -> [N, classes]
//   int8 after calibration on batches the program provides:
//     model.calibrate({batch1, batch2});
//     auto int8 = model.compile(resnet::Precision::int8);
//   Train one: resnet::train_model(config) (api/training.h), then Model::load its checkpoint.
//   Save and export it: model.save("m.safetensors"); model.export_onnx("m.onnx");
//
// Everything here wraps the code the `resnet` command line runs (api/model_loading.h,
// infer::CompiledModel, infer::Calibrator, io::save_state_dict, io::write_onnx), so a
// model behaves in a program exactly as it does under `resnet predict`, `bench` and
// `export`.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "resnet/data/preprocess.h"
#include "resnet/infer/calibration.h"
#include "resnet/infer/compiled_model.h"
#include "resnet/infer/graph.h"
#include "resnet/models/zoo.h"
#include "resnet/nn/module.h"
#include "resnet/tensor/tensor.h"

namespace resnet {

using infer::Precision;

struct LoadOptions {
  // A state_dict (.safetensors, e.g. torchvision's saved with safetensors) loaded strictly
  // into a zoo model or over a checkpoint's own weights; empty: none.
  std::string weights = {};  // (initialized so that {.model = ...} needs no .weights)
  // num_classes, in_channels, CIFAR shortcut, zero_init_residual for a zoo name (a
  // checkpoint's metadata overrides them; an ONNX file ignores them).
  models::ModelOptions model = {};
};

class Model {
 public:
  // `spec` is what the command line's --model takes:
  //   a zoo name       "resnet18", "resnet50", "resnet20", "block:64,128,2", ... (models/zoo.h);
  //                    random weights unless options.weights names a state_dict
  //   a checkpoint     PATH.safetensors whose __metadata__ names the architecture (written by
  //                    `resnet train`, `resnet quantize` or Model::save)
  //   an ONNX file     PATH.onnx (inference only: no module tree, so no save())
  // Bad files end in one resnet::Error naming the file and what was wrong.
  static Model load(const std::string& spec, const LoadOptions& options = {});

  const std::string& name() const { return name_; }  // the zoo name, or the ONNX path
  int64_t in_channels() const { return in_channels_; }
  int64_t num_classes() const { return num_classes_; }

  // The module tree (training, state_dict access); null for an ONNX file.
  const nn::ModulePtr& module() const { return module_; }

  // What a checkpoint of `resnet train` records: its class names (empty otherwise) and
  // its input recipe, ready for data::preprocess_image (nullopt otherwise; use
  // data::imagenet_preprocessing() for torchvision's networks).
  const std::vector<std::string>& class_names() const { return class_names_; }
  const std::optional<data::Preprocessing>& preprocessing() const { return preprocessing_; }
  // Whether the outputs are already probabilities (an ONNX classifier exported with its
  // final Softmax) rather than logits: resnet::class_probabilities takes it.
  bool outputs_probabilities() const { return outputs_probabilities_; }

  // int8 calibration: runs the f32 graph over `batches` (plain [N, C, H, W] f32, prepared
  // as the model's inputs are) and records every activation's range, replacing any
  // calibration the model had. A quantized checkpoint (`resnet quantize`) loads with one.
  void calibrate(const std::vector<Tensor>& batches);
  const std::shared_ptr<const infer::Calibration>& calibration() const { return calibration_; }

  // The inference compiler's graph for this model in `precision` (BN folded, conv + add +
  // ReLU fused, weights packed once per input shape). int8 needs a calibration. bf16 on a
  // CPU without AVX512_BF16 runs f32 (CompiledModel::fallback_note says so). A module
  // model's graph shares its weights, so compile again after changing them.
  infer::CompiledModel compile(Precision precision = Precision::f32,
                               infer::LayoutChoice layout = infer::LayoutChoice::automatic) const;

  // Writes the state_dict as safetensors (atomically), with the metadata that makes it a
  // checkpoint Model::load and `resnet --model` rebuild with no other arguments (and the
  // calibration, if any); PyTorch's load_state_dict takes the same file. Not for ONNX.
  void save(const std::string& path) const;

  // Writes the model as ONNX opset 13, as `resnet export` does: BN kept as nodes,
  // initializers under state_dict names, input "input" [N, C, H, W] with symbolic N and,
  // unless `size` > 0 fixes them, symbolic H and W.
  void export_onnx(const std::string& path, int64_t size = 0) const;

  // The model as an inference graph (ONNX-like, before the compiler's passes): what
  // export_onnx writes and compile() compiles. With `size` > 0 its shapes are filled for a
  // [1, C, size, size] input, which proves the whole network fits that size (otherwise
  // resnet::Error naming the model and the size).
  infer::Graph graph(int64_t size = 0) const;

 private:
  std::string name_;
  int64_t in_channels_ = 3;
  int64_t num_classes_ = 0;
  nn::ModulePtr module_;
  infer::Graph onnx_graph_;                      // for an ONNX file, which has no module
  std::map<std::string, std::string> metadata_;  // what save() writes besides calibration
  std::vector<std::string> class_names_;
  std::optional<data::Preprocessing> preprocessing_;
  std::shared_ptr<const infer::Calibration> calibration_;
  bool outputs_probabilities_ = false;
};

}  // namespace resnet
