#pragma once
// The op table: every OpKind described once, with the facts every reader of the graph
// shares: its ONNX name, how many activations and parameters it takes, what it checks
// of its parameters and how it computes its output shape. Graph::validate and
// Graph::infer_shapes read it; so does ONNX export through op_name().
//
// What is particular to one reader (how ONNX export writes an op's attributes, which
// kernel the reference interpreter runs, which step the compiler plans) lives with that
// reader, in its own table of one entry per OpKind in enum order, checked at compile
// time by `static_assert(covers_every_op(table))`: adding an op without its entry in one
// of them does not build.
#include <array>
#include <string>
#include <vector>

#include "resnet/infer/graph.h"

namespace resnet::infer {

struct OpInfo {
  OpKind op;              // the entry's own kind (tables are checked to be in enum order)
  const char* onnx_name;  // the ONNX operator: "Conv", "BatchNormalization", ...
  size_t inputs;          // activations read
  size_t min_params, max_params;
  // Checks the parameters' shapes and the attributes beyond validate()'s counts; throws
  // resnet::Error naming the node. nullptr: nothing to check.
  void (*check)(const Node& n);
  // The output's shape from the inputs' shapes, any dimension of which may be
  // kUnknownDim; throws resnet::Error naming the node when they do not fit.
  Shape (*shape)(const Node& n, const std::vector<const Shape*>& inputs);
};

const OpInfo& op_info(OpKind op);

// An output after the first that a node may write (Node::extra_outputs).
struct ExtraOutput {
  const char* role;  // "Indices", "mask", "running_mean", ...: how messages name it
  ElementType type;
  Shape shape;
};
// The outputs after the first that `n` may write, in order, with their shapes for input
// shape `x` and first output shape `y` (either may be empty where unknown): MaxPool's
// Indices, Dropout's mask, and in training BatchNormalization's running mean and
// variance. A node writes the first few of them; validate() refuses more.
std::vector<ExtraOutput> extra_outputs_of(const Node& n, const Shape& x, const Shape& y);

// "node 'layer1.0.conv1' (Conv)": how every graph error names a node.
std::string describe(const Node& n);

// Shape rules the tensor ops share with their kernels (each throws resnet::Error naming
// the node):
// `axis` of a value of `rank` dimensions, negatives counted from the end.
size_t normalized_axis(const Node& n, int64_t axis, size_t rank);
// reduce_mean: which axes its `axes` reduce (all where empty).
std::vector<bool> reduced_axes(const Node& n, size_t rank);
// transpose: output axis i reads input axis perm[i] (reversed where `axes` is empty).
std::vector<size_t> permutation(const Node& n, size_t rank);
// NumPy's broadcast of two shapes, aligned from the last axis.
Shape broadcast_shapes(const Node& n, const Shape& a, const Shape& b);

// True when `table` holds one entry per OpKind, in enum order (entry i has .op == i).
template <typename Entry, size_t N>
constexpr bool covers_every_op(const std::array<Entry, N>& table) {
  if (N != kOpCount) return false;
  for (size_t i = 0; i < N; ++i)
    if (table[i].op != static_cast<OpKind>(i)) return false;
  return true;
}

}  // namespace resnet::infer
