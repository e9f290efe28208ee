#pragma once
// The inference graph: the one representation that a zoo model, a checkpoint and an
// imported ONNX file all become, and that ONNX export and the inference compiler read.
//
// It is deliberately close to ONNX: one node per operator, values named, parameters kept
// unfused (a Conv followed by a BatchNorm stays two nodes), so that an import or an
// export is a 1:1 mapping and every optimization lives in the compiler's passes
// (src/infer/), not in the front ends.
//
// Values are numbered; value 0..inputs-1 are the graph inputs. Nodes are stored in an
// order where every input is produced before it is read (validate() checks it).

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "resnet/tensor/tensor.h"

namespace resnet::infer {

enum class OpKind {
  conv,             // params: weight [OC, IC/groups, KH, KW], optional bias [OC]
  batch_norm,       // params: weight (scale), bias, running_mean, running_var; attr eps
  relu,             //
  add,              // two inputs of one shape (no broadcasting)
  max_pool,         // attrs kernel, stride, pads, ceil_mode
  avg_pool,         // attrs kernel, stride, pads, ceil_mode, count_include_pad
  global_avg_pool,  // [N, C, H, W] -> [N, C, 1, 1]
  flatten,          // [N, ...] -> [N, prod(...)] (ONNX Flatten axis 1, or Reshape to [N, -1])
  linear,           // params: weight [OUT, IN], optional bias [OUT]: y = x W^T + b
  subsample,        // x[:, :, ::stride_h, ::stride_w] (ONNX Slice with steps on H, W)
  pad_channels,     // zero channels: pads.front = before, pads.back = after (ONNX Pad)
  softmax,          // probabilities along `axis` (a classifier's final ONNX Softmax)
  // Tensor ops on any rank, for the graphs other exporters write (and ONNX's own node
  // tests): plain f32, outside the hot path of a ResNet.
  add_constant,  // x + c, c a parameter broadcast with x by NumPy's rules (either order)
  sub_constant,  // x - c, or c - x where constant_first
  mul_constant,  // x * c
  div_constant,  // x / c, or c / x where constant_first
  clip,          // min(max(x, clip_min), clip_max)
  reduce_mean,   // the mean over `axes` (every axis where empty), keepdims or not
  reshape,       // the same values under another shape; the rule: see ShapeRule
  transpose,     // axes permuted by `axes` (ONNX perm)
  matmul,        // params: B (rank >= 2): x B, NumPy's matmul broadcasting
  dropout,       // inference Dropout that writes its mask (all true); y = x. A Dropout whose
                 // mask nobody reads is no node at all (the importer aliases it)
  kCount         // not an op: the number of ops, the size of every table indexed by OpKind
};
// Each op is described once in the op table (resnet/infer/op_table.h).
inline constexpr size_t kOpCount = static_cast<size_t>(OpKind::kCount);

// "Conv", "BatchNormalization", ... (the ONNX operator name, from the op table).
const char* op_name(OpKind op);

// A parameter tensor with the name it has in a state_dict or an ONNX initializer.
struct Param {
  std::string name;
  Tensor value;
};

// The grid a quantized ONNX file (QuantizeLinear, QLinearConv, ...) puts a value on:
// real = (q - zero_point) * scale for integers q in [qmin, qmax].
struct Quantization {
  float scale = 1.f;
  int32_t zero_point = 0;
  int32_t qmin = -128, qmax = 127;

  float lowest() const { return static_cast<float>(qmin - zero_point) * scale; }
  float highest() const { return static_cast<float>(qmax - zero_point) * scale; }
  // Whether the zero point is in the middle of [qmin, qmax] (0 for INT8, 128 for UINT8).
  bool centered() const { return zero_point == qmin + (qmax - qmin + 1) / 2; }
  // The largest magnitude the int8 engine's symmetric grids must hold for this value:
  // the file's grid exactly where it is symmetric (zero point in the middle) or starts at
  // 0 (a ReLU's output); otherwise a symmetric grid spanning the file's range.
  float max_abs() const;
};

// Spatial attributes shared by conv and the pools. pads are {top, left, bottom, right}.
// A pool of [N, C, D, H, W] adds the depth axis (kernel_d, stride_d, pad_front, pad_back,
// dilation_d); everything else leaves those at their neutral values.
struct Window {
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_t = 0, pad_l = 0, pad_b = 0, pad_r = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t kernel_d = 1, stride_d = 1, pad_front = 0, pad_back = 0, dilation_d = 1;
  int64_t groups = 1;              // conv only
  bool ceil_mode = false;          // pools only
  bool count_include_pad = false;  // avg_pool only
};

// How a reshape node computes its output shape from its input's (ONNX's rules).
enum class ShapeRule {
  reshape,    // axes: the target; 0 copies the input's size at that index (unless
              // allowzero), -1 takes what is left
  flatten,    // axes: {axis}: [prod(dims before axis), prod(dims from axis)]
  squeeze,    // axes: the size-1 axes to drop (every size-1 axis where empty)
  unsqueeze,  // axes: where size-1 axes are inserted, in the output's numbering
};

// What a value's elements are. Activations are f32; MaxPool's Indices are int64, and
// Dropout's mask is bool, held as a u8 tensor of 0 and 1 (written as '|b1' and BOOL).
enum class ElementType { f32, i64, boolean };
// The tensor dtype that holds a value of `type`: f32, i64, u8.
DType storage_dtype(ElementType type);
// "f32", "i64", "bool".
const char* element_type_name(ElementType type);

struct Node {
  OpKind op;
  std::string name;         // a readable name: the module path or the ONNX node name
  std::vector<int> inputs;  // value ids
  int output = -1;          // value id
  // The outputs after `output` (value ids), the first few of those the op table lists for
  // the op (extra_outputs_of in op_table.h): MaxPool's Indices, Dropout's mask, training
  // BatchNormalization's running mean and variance.
  std::vector<int> extra_outputs;
  Window window;      // conv, max_pool, avg_pool, subsample (strides)
  double eps = 1e-5;  // batch_norm
  // batch_norm: ONNX training_mode 1, normalise with the batch's own mean and (biased)
  // variance; the extra outputs are the running statistics updated with `momentum`.
  bool training = false;
  double momentum = 0.9;
  // max_pool Indices: ONNX storage_order 1 (each plane's index counts down columns).
  bool indices_column_major = false;
  std::vector<int64_t> pads;  // pad_channels: {before, after}
  std::vector<Param> params;  // in the order listed for the op above
  // conv whose weight a quantized ONNX file stores as integers: the step per output
  // channel (real = q * step), so that int8 inference quantizes it back onto the file's
  // grid; empty for weights stored in float.
  std::vector<float> weight_steps;
  // The tensor ops (see OpKind): axes as the ONNX file gives them, negatives counting
  // from the end.
  std::vector<int64_t> axes;  // reduce_mean, reshape (per shape_rule), transpose
  ShapeRule shape_rule = ShapeRule::reshape;
  bool allowzero = false;       // reshape: a 0 in the target is a size 0, not a copy
  bool keepdims = true;         // reduce_mean
  bool constant_first = false;  // sub_constant, div_constant: c - x, c / x
  float clip_min = -std::numeric_limits<float>::infinity();
  float clip_max = std::numeric_limits<float>::infinity();
  // softmax: the axis; coerce_2d: ONNX before opset 13, the input viewed as
  // [prod(dims before axis), prod(dims from axis)] and normalised over its rows.
  int64_t axis = -1;
  bool coerce_2d = false;
};

struct Value {
  std::string name;
  Shape shape;                          // filled by infer_shapes(); empty until then
  ElementType type = ElementType::f32;  // filled by infer_shapes() as well
  // Set where a quantized ONNX file quantizes this value (int8 inference uses it instead
  // of a calibration; see Calibration::from_graph).
  std::optional<Quantization> quant;
};

// The most dimensions a value may have (oneDNN's own limit is higher).
inline constexpr size_t kMaxRank = 8;

// A dimension only a runtime knows: an ONNX export's symbolic batch and spatial sizes.
inline constexpr int64_t kUnknownDim = -1;

struct Graph {
  std::vector<Value> values;
  std::vector<Node> nodes;
  int num_inputs = 1;
  int output = -1;
  // The graph's outputs after `output`, in order (a MaxPool's Indices, ...): run_reference
  // and CompiledModel return them after the first, and ONNX import and export keep them.
  std::vector<int> extra_outputs;
  // The file this graph came from declares its input NHWC [N, H, W, C] and reads it
  // through a Transpose to NCHW (tf2onnx, Keras): the graph itself takes [N, C, H, W],
  // and callers holding the file's NHWC arrays convert them (resnet run does).
  bool input_nhwc = false;

  // Adds a value and returns its id.
  int add_value(std::string name);
  // Adds a node writing a new value named `output_name` (defaults to the node's name);
  // returns the new value's id.
  int add_node(Node node, std::string output_name = "");

  // Checks the structure: inputs produced before they are read, one producer per value,
  // parameter counts and shapes as each op requires, the output set. Throws
  // resnet::Error naming the node on the first problem.
  void validate() const;
  // Fills every value's shape from the input shape (a network's [N, C, H, W], or any
  // rank where the graph holds only tensor ops); throws resnet::Error
  // naming the node when shapes do not fit (channel mismatch, window larger than input).
  // A dimension may be kUnknownDim: it propagates as unknown, and a check that needs it
  // is left to whoever knows it (what ONNX export declares for a symbolic input).
  void infer_shapes(const Shape& input_shape);
  // Every parameter, in node order (what an ONNX export writes as initializers, and
  // what a state_dict holds for a model with BN unfolded).
  std::vector<const Param*> all_params() const;
  // {output, extra_outputs...}.
  std::vector<int> outputs() const;
};

// Whether the graph's output is a Softmax's: probabilities rather than logits (an ONNX
// classifier exported with its final Softmax).
bool outputs_probabilities(const Graph& graph);

// Multiply-adds of one pass through a graph whose shapes are filled (convolutions and
// linear layers only, the usual convention).
int64_t count_macs(const Graph& graph);

// Output size of a window along one axis (PyTorch/ONNX formula, with ceil_mode).
int64_t window_out_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad_before,
                        int64_t pad_after, int64_t dilation, bool ceil_mode);

}  // namespace resnet::infer
