#pragma once
// What eval, predict and quantize share: a trained model as a function from a batch of
// normalized images to logits, in the precision asked for.

#include <functional>
#include <memory>
#include <string>

#include "resnet/infer/calibration.h"
#include "resnet/infer/compiled_model.h"
#include "resnet/nn/module.h"
#include "resnet/tensor/tensor.h"

namespace resnet::cli {

using Forward = std::function<Tensor(const Tensor&)>;

// How --dtype f32|bf16|int8 compiles a graph; int8 needs `calibration` (a quantized
// checkpoint's, or a quantized ONNX file's own grids).
infer::CompileOptions compile_options(const std::string& dtype,
                                      std::shared_ptr<const infer::Calibration> calibration);

// Every dtype runs the one compiled inference graph (the module tree's eval forward is
// the reference it is tested against); int8 needs `calibration`.
Forward make_forward(nn::Module& model, const std::string& dtype,
                     std::shared_ptr<const infer::Calibration> calibration = nullptr);

}  // namespace resnet::cli
