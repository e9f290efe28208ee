#pragma once
// ONNX in and out, through Debian's protobuf and libonnx (onnx-ml.proto).
//
// Import reads the ResNet family as torch.onnx.export writes it, in both of its shapes:
// eval mode (BatchNorm folded into the convolutions) and training-preserving mode
// (BatchNormalization nodes kept), and at opsets 1 to 18 the older forms of its operators
// (the ONNX Model Zoo's opset-7 files), each from the first version whose attributes the
// importer reads. Export writes opset 13.

#include <string>

#include "resnet/infer/graph.h"

namespace resnet::io {

// Reads `path` into an inference graph. Unsupported ops, missing initializers, values
// read before they are produced, wrong shapes and corrupt files end in resnet::Error
// naming the file and the node.
infer::Graph read_onnx(const std::string& path);

// Writes `graph` as an ONNX model at opset 13, atomically. Parameters become
// initializers under their names; the input is named "input", the output "output",
// with a symbolic batch dimension.
void write_onnx(const infer::Graph& graph, const std::string& path);

}  // namespace resnet::io
