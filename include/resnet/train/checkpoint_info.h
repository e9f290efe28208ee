#pragma once
// What a trained checkpoint says about itself, in its safetensors __metadata__, so that
// `resnet eval`, `resnet predict` and `--model CHECKPOINT` need nothing else:
//   format          "resnet-checkpoint-1"
//   model           zoo name (e.g. "resnet20")
//   num_classes, in_channels, shortcut ("A" | "B")
//   input_size      "HxW" the network was trained on
//   eval_resize     optional: the shorter side its evaluation resizes images to before the
//                   center crop of input_size (runs that crop images of any size: data/
//                   pipeline.h); absent in older checkpoints and for fixed-size data, whose
//                   images are resized to input_size as a whole
//   normalize_mean, normalize_std   per-channel, comma-separated ("0.286,...")
//   class_names     a JSON array of strings
//   dataset         the data spec it was trained on
//   epoch           completed epochs
//   init, init_sha256   (fine-tuned runs only) the file name of the weights the run
//                   started from (--init) and the SHA-256 of its bytes; absent otherwise

#include <map>
#include <string>
#include <vector>

#include "resnet/data/loader.h"
#include "resnet/data/preprocess.h"
#include "resnet/models/zoo.h"
#include "resnet/nn/module.h"

namespace resnet::train {

struct CheckpointInfo {
  std::string model;
  models::ModelOptions options;
  int64_t input_height = 0, input_width = 0;
  int64_t eval_resize = 0;  // 0: none recorded
  std::vector<float> mean, std;
  std::vector<std::string> class_names;
  std::string dataset;
  int64_t epoch = 0;
  std::string init, init_sha256;  // empty: trained from scratch

  std::map<std::string, std::string> to_metadata() const;
  // Reads the keys above; `path` names the file in errors. Keys that a bare state_dict
  // lacks are refused with a message saying to use --model NAME --weights.
  static CheckpointInfo from_metadata(const std::map<std::string, std::string>& metadata,
                                      const std::string& path);
};

// How evaluation and prediction turn one image into the network's input for this checkpoint:
// with eval_resize, Resize(eval_resize) then CenterCrop(input_size), as training evaluated;
// else a resize to input_size (how fixed-size folders were read). Normalized with its
// mean and std either way.
data::Preprocessing eval_preprocessing(const CheckpointInfo& info);

// The loader transforms that evaluate a dataset for this checkpoint: the Preprocessing above
// per sample when eval_resize is recorded (any image size), else Normalize on the dataset's
// own images.
void set_eval_transforms(const CheckpointInfo& info, data::LoaderOptions& options);

// Reads just the metadata of a checkpoint file.
CheckpointInfo read_checkpoint_info(const std::string& path);

// A trained network ready for inference: rebuilt from the checkpoint's metadata, its
// weights loaded, in eval mode. A bare state_dict (no metadata) is refused, since it lacks
// the input size, normalization and class names that evaluation and prediction need.
struct TrainedModel {
  CheckpointInfo info;
  nn::ModulePtr module;
  // A quantized checkpoint's activation ranges (metadata "int8_calibration", JSON, written
  // by resnet quantize); empty otherwise.
  std::string int8_calibration;
};
TrainedModel load_trained_model(const std::string& path);

}  // namespace resnet::train
