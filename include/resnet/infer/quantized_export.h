#pragma once
// The graph a quantized model is exported as, so that another runtime (ONNX Runtime) runs
// the int8 model we run: BatchNorm folded into the convolutions as int8 inference folds
// it, every value the calibration has a range for annotated with the grid int8 inference
// puts it on (Value::quant: u8 on max / 255 for non-negative values, s8 on max / 127
// otherwise), and each convolution's weight on the int8 engine's own steps
// (Node::weight_steps). io::write_onnx writes the annotations as QuantizeLinear /
// DequantizeLinear pairs and INT8 weights with INT32 biases: the QDQ form.

#include "resnet/infer/calibration.h"
#include "resnet/infer/graph.h"

namespace resnet::infer {

// `calibration` should come from an unfused calibration (Calibrator), which has the range
// of each convolution's result before its residual add; values without a range stay
// float. The graph's output (the logits) stays float.
Graph quantized_export_graph(const Graph& graph, const Calibration& calibration);

}  // namespace resnet::infer
