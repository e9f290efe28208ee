#include "inference.h"

#include <iostream>

#include "resnet/core/error.h"
#include "resnet/infer/compiled_model.h"
#include "resnet/infer/lower_module.h"

namespace resnet::cli {

infer::CompileOptions compile_options(const std::string& dtype,
                                      std::shared_ptr<const infer::Calibration> calibration) {
  infer::CompileOptions options;
  if (dtype == "f32") {
    options.precision = infer::Precision::f32;
  } else if (dtype == "bf16") {
    options.precision = infer::Precision::bf16;
  } else if (dtype == "int8") {
    RESNET_CHECK(calibration != nullptr,
                 "--dtype int8: the model has no int8 calibration; make one with `resnet "
                 "quantize --model CHECKPOINT --data SPEC --out Q.safetensors`, or use a "
                 "quantized ONNX file (QDQ or QLinear operators)");
    options.precision = infer::Precision::int8;
    options.calibration = std::move(calibration);
  } else {
    RESNET_FAIL("--dtype: expected f32, bf16 or int8, got '" << dtype << "'");
  }
  return options;
}

Forward make_forward(nn::Module& model, const std::string& dtype,
                     std::shared_ptr<const infer::Calibration> calibration) {
  auto compiled = std::make_shared<infer::CompiledModel>(
      infer::lower_module(model), compile_options(dtype, std::move(calibration)));
  if (!compiled->fallback_note().empty()) std::cerr << compiled->fallback_note() << "\n";
  return [compiled](const Tensor& x) { return compiled->run(x); };
}

}  // namespace resnet::cli
