#pragma once
// Private to src/infer/: the compiler's working form of a graph. A Plan is a list of
// steps in execution order; the passes (passes.cpp) rewrite it, the executor
// (compiled_model.cpp) runs it.

#include <string>
#include <vector>

#include "resnet/infer/graph.h"

namespace resnet::infer::detail {

struct Step {
  enum class Kind {
    conv,       // inputs {src} or {src, residual}: relu?(conv(src) + bias + residual?)
    pool,       // max_pool, avg_pool, global_avg_pool
    linear,     // inputs [N, IN] or [N, C, H, W] (a folded flatten)
    relu,       // unfused ReLU
    add,        // unfused add (relu optional)
    flatten,    // unfused flatten
    subsample,  // CIFAR option-A shortcut pieces, on plain tensors
    pad_channels,
    tensor_op,  // softmax and the tensor ops of any rank (OpKind::add_constant, ...), on
                // plain f32: `node` says which and how (run_tensor_op); also every node
                // that writes several outputs (MaxPool with Indices, Dropout with its
                // mask) or trains (BatchNormalization training_mode), as plain loops
  };
  Kind kind;
  OpKind source_op;  // the graph op the step came from
  std::string name;
  std::vector<int> inputs;
  int output = -1;
  std::vector<int> extra_outputs;  // tensor_op: the node's outputs after `output`

  Window window;        // conv, pool, subsample
  Tensor weight, bias;  // conv, linear (bias always defined after compilation)
  // conv: the quantized file's step per output channel of `weight` (Node::weight_steps);
  // empty: int8 derives them from the weights.
  std::vector<float> weight_steps;
  bool add_residual = false;
  // conv: the value it computes before any fused add or ReLU (its grid, where a quantized
  // file gives one, is kept inside the fused kernel; see FusedConv2dConfig::Int8).
  int own_output = -1;
  bool relu = false;
  bool clip = false;  // conv: clip to [clip_min, clip_max] after everything else
  float clip_min = 0.f, clip_max = 0.f;
  std::vector<int64_t> pads;       // pad_channels
  std::vector<std::string> fused;  // what the passes merged in, for describe()
  Node node;                       // tensor_op: the graph node it runs
};

struct Plan {
  std::vector<Step> steps;
  std::vector<Value> values;  // shapes filled for the compiled input shape
  int output = -1;
  std::vector<int> extra_outputs;  // the graph's outputs after `output`
};

// The graph as steps, one per node (BN still separate; see the passes).
Plan plan_from_graph(const Graph& graph);

// Passes, in the order the compiler runs them.
void fold_batch_norm(Plan& plan);    // conv -> BN into one conv; a lone BN becomes a 1x1
                                     // depthwise conv
void fuse_residual_add(Plan& plan);  // conv -> add into the conv's sum post-op
void fuse_relu(Plan& plan);          // conv/add -> relu into a post-op
void fuse_clip(Plan& plan);          // conv -> clip (ReLU6) into a post-op; not for int8
void fold_flatten(Plan& plan);       // flatten -> linear: the linear reads 4-D input

// A tensor_op step's node on plain f32 `x`, whose output has `out_shape`.
Tensor run_tensor_op(const Node& node, const Tensor& x, const Shape& out_shape);
// The same for a node of any number of outputs: {output, extra_outputs...}, of the
// shapes given (the extra ones in the element types extra_outputs_of gives). Nodes with
// several outputs, and training BatchNormalization, run as plain loops here.
std::vector<Tensor> run_tensor_op_outputs(const Node& node, const Tensor& x,
                                          const std::vector<Shape>& out_shapes);
// Whether node `n` runs as such a loop (a tensor_op step) rather than as its own kind.
bool runs_as_loop(const Node& n);

// For each value, the index of the last step that reads it (-1: never read).
std::vector<int> last_uses(const Plan& plan);

}  // namespace resnet::infer::detail
