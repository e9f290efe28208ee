#pragma once
// A naive interpreter of the inference graph: every op as a plain loop over NCHW f32
// tensors, eval-mode semantics (BatchNormalization uses the running statistics). It is
// the oracle the compiled model and the ONNX import are checked against, so it favours
// being obviously right over being fast; never use it on a hot path.

#include <vector>

#include "resnet/infer/graph.h"
#include "resnet/tensor/tensor.h"

namespace resnet::infer {

// Runs `g` on `x` (plain f32 [N, C, H, W]) and returns the graph's output. Throws
// resnet::Error naming the node when the graph is malformed or `x` does not fit it.
Tensor run_reference(const Graph& g, const Tensor& x);
// Every output of `g`: {output, extra_outputs...}, each in its element type's dtype (f32,
// i64 Indices, u8 0/1 for a bool mask).
std::vector<Tensor> run_reference_outputs(const Graph& g, const Tensor& x);

}  // namespace resnet::infer
