#pragma once
// QDQ export (private to src/io): the float ONNX model write_onnx builds, rewritten into
// the form ONNX Runtime's quantizer writes, from the graph's quantization annotations
// (infer::Value::quant, infer::Node::weight_steps):
// - a weight with steps becomes an INT8 initializer read through a DequantizeLinear per
//   output channel, and its convolution's bias an INT32 one on the step input scale x
//   weight step (what ONNX Runtime needs to fuse the convolution into a QLinearConv);
// - a quantized value gets a QuantizeLinear -> DequantizeLinear pair after its producer,
//   and its readers read the DequantizeLinear's output;
// - a Relu whose output grid starts at 0 is dropped, its input quantized on that grid
//   (whose clamp at 0 is the ReLU), as quantizers do; the importer restores it.

#include <onnx/onnx_pb.h>

#include <map>
#include <string>
#include <vector>

#include "resnet/infer/graph.h"

namespace resnet::io::detail {

struct QdqAnnotations {
  std::map<std::string, infer::Quantization> values;       // ONNX value name -> its grid
  std::map<std::string, std::vector<float>> weight_steps;  // weight initializer -> steps
  bool empty() const { return values.empty() && weight_steps.empty(); }
};

void rewrite_as_qdq(onnx::GraphProto& graph, const QdqAnnotations& annotations);

}  // namespace resnet::io::detail
