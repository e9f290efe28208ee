#pragma once
// One model as the server presents it: its name in URLs, the one image shape it takes,
// its output, and how /classify turns an upload into its input. Loading goes through the
// library's facade (resnet::Model), as any program's would.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "resnet/api/model.h"
#include "serve/options.h"

namespace resnet::serve {

struct ServedModel {
  std::string name;    // as URLs spell it
  std::string source;  // the MODEL argument
  std::string dtype;   // "f32", "bf16" or "int8"
  std::string input_name, output_name;
  // Every request's images are [C, H, W] of this shape: batches need one shape, and one
  // shape per model bounds the plans the engine compiles (one per batch size).
  Shape image_shape;
  Shape output_shape;  // one image's output: [classes] for a classifier
  // /classify's preprocessing, or why the model has none that yields image_shape.
  std::optional<data::Preprocessing> classify;
  std::string classify_refusal;
  std::vector<std::string> class_names;  // empty: classes are named by index
  bool outputs_probabilities = false;
  std::string fallback_note;    // bf16 asked on a CPU without it, see CompiledModel
  bool random_weights = false;  // a zoo name: for load tests, not for answers
};

// "NAME=MODEL" or "MODEL", whose NAME is then the file's stem ("runs/best.safetensors" ->
// "best"). Names are [A-Za-z0-9_.-]+ so that they need no escaping in URLs or metrics.
std::pair<std::string, std::string> split_model_arg(const std::string& arg);

// Loads `arg` and compiles it in the precision asked; the compiled engine goes to
// `engine`. Errors are resnet::Error naming the argument.
ServedModel load_served_model(const std::string& arg, const ServeOptions& options,
                              std::unique_ptr<infer::CompiledModel>& engine);

}  // namespace resnet::serve
