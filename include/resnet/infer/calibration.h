#pragma once
// Post-training int8 calibration: the largest magnitude each activation of a compiled
// graph reaches on representative data. Scales follow from it (symmetric quantization:
// 127 / max for s8 values, 255 / max for u8 ones, which are the outputs of a ReLU).

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "resnet/infer/graph.h"
#include "resnet/tensor/tensor.h"

namespace resnet::infer {

class CompiledModel;

struct Calibration {
  // By value name, as the compiled plan names them (the graph's value names).
  std::map<std::string, float> max_abs;
  int64_t images = 0;

  std::string to_json() const;
  // `where` names the file in errors.
  static Calibration from_json(const std::string& json, const std::string& where);
  // The ranges a quantized ONNX file gives its values (Value::quant), or nullopt when it
  // gives none. `images` is 0: nothing was observed.
  static std::optional<Calibration> from_graph(const Graph& graph);
};

// Runs the f32 compiled graph over batches and records every activation's range.
class Calibrator {
 public:
  explicit Calibrator(const Graph& graph);
  ~Calibrator();
  void observe(const Tensor& batch);
  const Calibration& result() const { return calibration_; }

 private:
  std::unique_ptr<CompiledModel> model_;
  Calibration calibration_;
};

}  // namespace resnet::infer
