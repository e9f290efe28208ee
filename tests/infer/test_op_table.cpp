// The op table's completeness: every OpKind is described once (name, arity, shape), and
// every reader of the graph handles it. The per-reader tables are checked at compile time
// (static_assert(covers_every_op(...))); this runs each op through all of them: shape
// inference with known and unknown sizes, the reference interpreter, ONNX export and
// import, and the compiler. Adding an op without a sample graph below fails here.

#include "resnet/infer/op_table.h"

#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <set>
#include <string>

#include "io/io_test_util.h"
#include "resnet/infer/compiled_model.h"
#include "resnet/infer/reference_run.h"
#include "resnet/io/onnx.h"
#include "support/deterministic_weights.h"

namespace resnet::infer {
namespace {

Param param(const std::string& name, Shape shape) {
  return {name, testing::deterministic_tensor(11, name, std::move(shape))};
}

Node node(OpKind op, const std::string& name, std::vector<int> inputs) {
  Node n;
  n.op = op;
  n.name = name;
  n.inputs = std::move(inputs);
  return n;
}

// input [N, 3, 6, 6] -> a 3x3 conv to 4 channels -> the op under test (with what it needs
// around it). nullopt for an op without a sample yet.
std::optional<Graph> sample_graph(OpKind op) {
  Graph g;
  g.add_value("input");
  Node stem = node(OpKind::conv, "stem", {0});
  stem.window.kernel_h = stem.window.kernel_w = 3;
  stem.window.pad_t = stem.window.pad_l = stem.window.pad_b = stem.window.pad_r = 1;
  stem.params = {param("stem.weight", {4, 3, 3, 3}), param("stem.bias", {4})};
  const int x = g.add_node(stem);
  Node n = node(op, "op", {x});
  switch (op) {
    case OpKind::conv:
      n.window.stride_h = n.window.stride_w = 2;
      n.params = {param("op.weight", {6, 4, 1, 1})};
      break;
    case OpKind::batch_norm: {
      n.params = {param("op.weight", {4}), param("op.bias", {4}), param("op.running_mean", {4}),
                  param("op.running_var", {4})};
      float* var = n.params[3].value.f32();
      for (int i = 0; i < 4; ++i) var[i] = std::fabs(var[i]) + 0.5f;
      break;
    }
    case OpKind::add:
      n.inputs = {x, g.add_node(node(OpKind::relu, "relu", {x}))};
      break;
    case OpKind::max_pool:
    case OpKind::avg_pool:
      n.window.kernel_h = n.window.kernel_w = 3;
      n.window.stride_h = n.window.stride_w = 2;
      n.window.pad_t = n.window.pad_l = n.window.pad_b = n.window.pad_r = 1;
      break;
    case OpKind::linear:
      n.inputs = {g.add_node(node(OpKind::flatten, "flatten", {x}))};
      n.params = {param("op.weight", {5, 4 * 6 * 6}), param("op.bias", {5})};
      break;
    case OpKind::subsample:
      n.window.stride_h = n.window.stride_w = 2;
      break;
    case OpKind::pad_channels:
      n.pads = {1, 2};
      break;
    case OpKind::softmax:
      n.inputs = {g.add_node(node(OpKind::flatten, "flatten", {x}))};
      break;
    case OpKind::add_constant:
    case OpKind::mul_constant:
      // Along W: a constant per channel would import as a BatchNormalization instead.
      n.params = {param("op.constant", {6})};
      break;
    case OpKind::sub_constant:
      n.params = {param("op.constant", {4, 1, 6})};
      n.constant_first = true;  // c - x
      break;
    case OpKind::div_constant: {
      n.params = {param("op.constant", {4, 1, 6})};
      float* c = n.params[0].value.f32();  // away from 0: the quotient stays well scaled
      for (int i = 0; i < 24; ++i) c[i] = std::fabs(c[i]) + 0.5f;
      break;
    }
    case OpKind::clip:
      n.clip_min = -0.5f;
      n.clip_max = 0.25f;
      break;
    case OpKind::reduce_mean:
      n.axes = {1};
      n.keepdims = false;
      break;
    case OpKind::reshape:
      n.axes = {0, 4, -1};
      break;
    case OpKind::transpose:
      n.axes = {0, 2, 3, 1};
      break;
    case OpKind::matmul:
      n.params = {param("op.b", {6, 5})};
      break;
    case OpKind::dropout: {
      // Written only where its mask is read: here, as the graph's second output.
      n.extra_outputs = {g.add_value("op.mask")};
      g.extra_outputs = n.extra_outputs;
      break;
    }
    case OpKind::relu:
    case OpKind::global_avg_pool:
    case OpKind::flatten:
      break;
    default:
      return std::nullopt;
  }
  g.output = g.add_node(n);
  return g;
}

std::vector<OpKind> every_op() {
  std::vector<OpKind> ops;
  for (size_t i = 0; i < kOpCount; ++i) ops.push_back(static_cast<OpKind>(i));
  return ops;
}

TEST(OpTable, DescribesEveryOpOnce) {
  std::set<std::string> names;
  for (OpKind op : every_op()) {
    const OpInfo& info = op_info(op);
    EXPECT_EQ(info.op, op);
    ASSERT_NE(info.onnx_name, nullptr);
    EXPECT_STREQ(op_name(op), info.onnx_name);
    // One ONNX operator may be two ops here by what it reads: Add of two computed
    // values (add) and of a constant (add_constant).
    const std::string key = std::string(info.onnx_name) + "/" + std::to_string(info.inputs);
    EXPECT_TRUE(names.insert(key).second) << info.onnx_name << " named twice";
    EXPECT_GE(info.inputs, 1u);
    EXPECT_LE(info.min_params, info.max_params);
    EXPECT_NE(info.shape, nullptr) << info.onnx_name;
  }
}

double largest_difference(const Tensor& a, const Tensor& b) {
  double d = 0;
  for (int64_t i = 0; i < a.numel(); ++i)
    d = std::max(d, std::fabs(static_cast<double>(a.f32()[i]) - b.f32()[i]));
  return d;
}

bool has_op(const Graph& g, OpKind op) {
  for (const Node& n : g.nodes)
    if (n.op == op) return true;
  return false;
}

TEST(OpTable, EveryReaderHandlesEveryOp) {
  testing::TempDir dir;
  const Tensor x = testing::deterministic_tensor(3, "input", {2, 3, 6, 6});
  for (OpKind op : every_op()) {
    const std::string name = op_name(op);
    SCOPED_TRACE(name);
    std::optional<Graph> sample = sample_graph(op);
    ASSERT_TRUE(sample) << "no sample graph for " << name << ": add one to sample_graph()";
    Graph g = *sample;

    // Shape inference, with sizes known and unknown.
    g.infer_shapes({kUnknownDim, 3, kUnknownDim, kUnknownDim});
    EXPECT_EQ(g.values[g.output].shape[0], kUnknownDim);
    g.infer_shapes(x.shape());
    const Shape expected_shape = g.values[g.output].shape;

    // The reference interpreter.
    const Tensor expected = run_reference(g, x);
    EXPECT_EQ(expected.shape(), expected_shape);

    // ONNX export and import: the op comes back as itself and computes the same.
    const std::string path = dir.file(name + ".onnx");
    io::write_onnx(g, path);
    const Graph imported = io::read_onnx(path);
    EXPECT_TRUE(has_op(imported, op)) << "the ONNX importer did not map " << name << " back";
    EXPECT_LE(largest_difference(run_reference(imported, x), expected), 1e-6);

    // The compiler.
    CompiledModel compiled(g);
    const Tensor y = compiled.run(x);
    ASSERT_EQ(y.shape(), expected.shape());
    EXPECT_LE(largest_difference(y, expected), 1e-4);
  }
}

}  // namespace
}  // namespace resnet::infer
