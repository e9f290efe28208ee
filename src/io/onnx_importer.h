#pragma once
// The ONNX graph walk behind read_onnx (private to src/io): a symbol table from ONNX value
// names to graph values or constants, one converter per supported operator
// (onnx_ops.cpp), and the graph-level checks (onnx_importer.cpp).
//
// Constants (initializers, Constant nodes, Identity of either) are not graph values: the
// ops that take weights, shapes or pads read them at import time, and a parameter keeps
// the name its consumer reads it by (an initializer's, or the Identity output torch's
// exporter puts between a shared initializer and its users), so that a
// training-preserving export keeps its state_dict names.

#include <onnx/onnx_pb.h>

#include <array>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "onnx_attributes.h"
#include "resnet/infer/graph.h"

namespace resnet::io::detail {

struct Symbol {
  enum class Kind { activation, constant };
  Kind kind = Kind::activation;
  // activation: the graph value.
  int value = -1;
  // Zero padding {top, left, bottom, right} that a Pad node put on H and W, not yet
  // applied: it folds into the Conv or AveragePool that reads this value.
  std::array<int64_t, 4> pending_pad{0, 0, 0, 0};
  // constant: the tensor (decoded on first use), the TensorProto it comes from, and the
  // name its readers know it by.
  const onnx::TensorProto* proto = nullptr;
  Tensor tensor;
  std::string name;
  // activation: set when the name holds the integers a QuantizeLinear (or a QLinear
  // operator) made of `value`; only a DequantizeLinear (or MaxPool) reads them.
  std::optional<infer::Quantization> quant;
  // constant: a weight a DequantizeLinear made from integers, per output channel (one
  // entry: the whole tensor); see infer::Node::weight_steps.
  std::vector<float> quant_steps;

  bool has_pending_pad() const {
    return pending_pad[0] || pending_pad[1] || pending_pad[2] || pending_pad[3];
  }
};

class Importer {
 public:
  Importer(std::string file, int64_t opset, const onnx::GraphProto& graph);
  infer::Graph run();

 private:
  // --- graph level (onnx_importer.cpp) ---
  void add_initializers();
  void add_input();
  void index_nodes();
  void convert(int index);
  // Converts node_ with the converter of its operator in `domain` ("": the default).
  void run_converter(const std::string& domain);
  void set_output();
  void final_checks();

  // "FILE: node 'NAME' (OP, opset N)": the prefix of every message about the current node.
  std::string here() const;
  // Number of inputs of the current node, counting a trailing empty (omitted) one.
  int num_inputs() const { return node_->input_size(); }
  // Whether optional input i is given (present and not the empty name).
  bool has_input(int i) const { return i < node_->input_size() && !node_->input(i).empty(); }
  // The symbol of input i; errors for a missing input or one read before it is produced.
  Symbol& input(int i);
  // Input i, which must be an activation; with allow_pending_pad false, a value that
  // still carries an unapplied Pad is an error, and with allow_quantized false, the
  // integers of a QuantizeLinear.
  Symbol& activation(int i, bool allow_pending_pad = false, bool allow_quantized = false);
  // Input i, which must be a constant of the given dtype (decoded here); `role` names it
  // in messages ("weight", "pads").
  Symbol& constant(int i, DType dtype, const char* role);
  // Input i, which must be a constant, decoded by `decode` on first use; `role` names it.
  using Decoder = Tensor (*)(const onnx::TensorProto&, const std::string&);
  Symbol& decoded_constant(int i, const char* role, Decoder decode);
  // Input i, a constant INT8, UINT8 or INT32 tensor (decoded here, widened to i64).
  Symbol& integer_constant(int i, const char* role);
  // Input i as a constant INT64 list (a Pad's pads, a Reshape's shape, ...).
  std::vector<int64_t> constant_ints(int i, const char* role);
  // ReduceMean's and Squeeze's axes: an attribute before opset `input_since`, input 1
  // from it; empty when absent.
  std::vector<int64_t> axes_of(const NodeAttributes& attrs, int64_t input_since);
  // Checks the node has between lo and hi inputs and an output; of the outputs after the
  // first, only the first `extra` may be read (MaxPool's Indices, ...): the others must
  // be omitted or unread.
  void expect_arity(int lo, int hi, int extra = 0);
  // For a node that writes up to `most` outputs after the first: new values for outputs 1
  // to the last one read (none when none is read), for Node::extra_outputs; bind them
  // with define_extra_outputs once the node is emitted.
  std::vector<int> read_extra_outputs(int most);
  void define_extra_outputs(const std::vector<int>& values);
  // Adds `n` (named after the node) writing a new value named after the node's output,
  // and checks shapes so far when the input shape is known; returns the value id.
  int emit(infer::Node n);
  // emit() of a node of one input and no parameters (Relu, Flatten, ...).
  int emit_unary(infer::OpKind op, int x);
  // Adds `n` as one step of several that the current node becomes: named after the node
  // with `suffix` (".transA"), its output not yet the node's output.
  int emit_step(infer::Node n, const std::string& suffix);
  // Binds the node's first output to an activation, or to a constant.
  void define(Symbol s);
  // Binds the node's first output to activation value `v`.
  void define_activation(int v);
  // The same, for an operator that only selects or moves the values of `from` (MaxPool,
  // Flatten): when `from` holds a QuantizeLinear's integers, so does the output, on the
  // same grid.
  void define_rearranged(int v, const Symbol& from);
  // Shape of value `v`, which must be known and 4-D, or 5-D `with_depth` (`why` says what
  // needs it).
  const Shape& shape_of(int v, const char* why, bool with_depth = false) const;
  // Re-runs shape inference over the graph built so far (after emit or an edit).
  void check_shapes(int last_value);

  // --- operators (onnx_ops.cpp), dispatched by ONNX name through kConverters ---
  struct Converter {
    const char* op_type;
    void (Importer::*convert)();
    // The first opset whose version of the operator the converter reads: before it the
    // operator had other attributes or meanings (Add's `broadcast`, BatchNormalization's
    // `is_test`), refused by name.
    int64_t since;
    // The operator set: the default one, or "com.microsoft" (ONNX Runtime's QLinearAdd and
    // QLinearGlobalAveragePool, which its quantizer writes).
    const char* domain = "";
  };
  static const Converter kConverters[];
  static std::string supported_ops();
  void op_conv();
  void op_batch_norm();
  void op_relu();
  void op_add();
  void op_pool(bool is_max);
  void op_max_pool() { op_pool(true); }
  void op_avg_pool() { op_pool(false); }
  void op_global_avg_pool();
  void op_identity();
  void op_constant();
  void op_pad();
  std::vector<int64_t> pad_amounts(const NodeAttributes& attrs);
  void op_slice();
  // onnx_ops_linear.cpp
  void op_flatten();
  void op_gemm();
  void op_matmul();
  void op_reshape();
  // onnx_ops_other_exporters.cpp
  void op_clip();
  void op_dropout();
  void op_channel_affine(char op);  // '+', '-', '*', '/'
  void op_mul() { op_channel_affine('*'); }
  void op_sub() { op_channel_affine('-'); }
  void op_div() { op_channel_affine('/'); }
  void op_reduce_mean();
  void op_squeeze();
  void op_softmax();
  void op_unsqueeze();
  // The tensor-op forms of the converters above: x OP k (k OP x), and a reshape node.
  void emit_arithmetic(char op, int x, const Symbol& k, bool constant_first);
  void emit_reshape(infer::ShapeRule rule, int x, std::vector<int64_t> axes,
                    bool allowzero = false);
  void op_transpose();
  // onnx_ops_quantized.cpp
  void op_quantize_linear();
  void op_dequantize_linear();
  void op_qlinear_conv();
  void op_qlinear_matmul();
  void op_qlinear_add();
  void op_qlinear_global_avg_pool();
  // The scale (input scale_i) and zero point (input zp_i, optional: UINT8 0) of a
  // QuantizeLinear or DequantizeLinear, per tensor.
  infer::Quantization grid(int scale_i, int zp_i, const char* role);
  // A DequantizeLinear of a constant: (q - zero_point) * scale, per tensor or along `axis`.
  Symbol dequantized_constant(int64_t axis);
  // Whether value `v` cannot be negative: a ReLU's output, pooled from one, or on a grid
  // that starts at 0.
  bool non_negative(int v) const;
  // A QuantizeLinear or DequantizeLinear of a bare MatMul's product (QLinearMatMul, or
  // QDQ around a MatMul): its output still takes the Add of a bias into the Linear.
  void carry_bare_matmul();
  // Runs node `n`, made from the current QLinear node (which keeps naming messages), as
  // if it were in the file.
  void convert_part(onnx::NodeProto n);
  // The QLinear node's input x (a quantized activation, or with `axis` a weight scaled
  // along it) dequantized, under a new name.
  std::string dequantized_input(int x, int scale, int zp, int64_t axis = -1);
  // Whether every reader of graph input `input` is a Transpose with perm [0, 3, 1, 2].
  bool read_only_by_nhwc_to_nchw(const std::string& input) const;
  // Whether graph value `value` is the output of an `op` node.
  bool produced_by(int value, infer::OpKind op) const;
  // Kernel, strides, dilations, pads and auto_pad of Conv, MaxPool and AveragePool, for an
  // input of value `x`; `kernel` comes from the weight (Conv) or kernel_shape (pools), of
  // one size per spatial axis: one (read as the 2-D attributes of [N, C, 1, L]), two, or
  // three (a pool of [N, C, D, H, W]).
  infer::Window window(const NodeAttributes& attrs, int x, const std::vector<int64_t>& kernel,
                       bool has_dilations);

  std::string file_;
  int64_t opset_;
  const onnx::GraphProto& proto_;
  infer::Graph g_;
  std::unordered_map<std::string, Symbol> symbols_;
  std::unordered_map<std::string, int> producer_;  // ONNX value name -> index of its node
  std::unordered_map<std::string, int> reads_;     // ONNX value name -> readers (+1: output)
  // Linear nodes made from a MatMul, still without bias, by their ONNX output name: a
  // following Add of a 1-D constant becomes their bias.
  std::unordered_map<std::string, size_t> bare_matmuls_;
  // Subsample nodes made from a Slice, by their ONNX output name: a Slice that follows
  // (torch writes one per axis) merges into them.
  std::unordered_map<std::string, size_t> subsamples_;
  Shape input_shape_;           // [N, C, H, W] for shape inference (N = 1 when symbolic)
  Shape declared_input_;        // as the file declares it (NCHW), kUnknownDim where symbolic
  bool input_is_nhwc_ = false;  // declared NHWC, read only through a Transpose to NCHW
  bool shapes_ = false;         // whether C, H and W are known, so shapes are checked as we go
  const onnx::NodeProto* node_ = nullptr;
  // The nodes a QLinear operator is expanded into (convert_part), kept alive while read.
  std::deque<onnx::NodeProto> parts_;
  std::string node_name_;
};

}  // namespace resnet::io::detail
