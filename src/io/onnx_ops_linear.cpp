// The converters of the classifier's operators and of what reshapes before it: Flatten,
// Gemm, MatMul and Reshape. The forms torch and the other exporters write for a
// classifier become the linear layer (and the flatten folded into it); the rest become
// tensor ops of any rank (transpose, matmul, reshape, add_constant).
#include "onnx_importer.h"
#include "resnet/core/error.h"

namespace resnet::io::detail {

namespace {

using infer::Node;
using infer::OpKind;

// [K, N] -> [N, K] (a MatMul or transB=0 Gemm weight into Linear's [OUT, IN]).
Tensor transposed(const Tensor& t) {
  const int64_t rows = t.dim(0), cols = t.dim(1);
  Tensor out({cols, rows});
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out.f32()[c * rows + r] = t.f32()[r * cols + c];
  return out;
}

Tensor scaled(const Tensor& t, double factor) {
  Tensor out = t.clone();
  for (float& v : out.values()) v = static_cast<float>(v * factor);
  return out;
}

}  // namespace

// Flatten at axis 1 keeps the batch: the flatten before the classifier, which folds into
// it. Other axes are a reshape of any rank.
void Importer::op_flatten() {
  expect_arity(1, 1);
  const NodeAttributes attrs(*node_, here());
  const Symbol& in = activation(0, false, true);  // integers too: Flatten moves values only
  const int x = in.value;
  int64_t axis = attrs.get_int("axis", 1);
  const Shape& xs = g_.values[x].shape;
  if (axis < 0 && !xs.empty()) axis += static_cast<int64_t>(xs.size());
  if (axis == 1) {
    define_rearranged(emit_unary(OpKind::flatten, x), in);
    return;
  }
  emit_reshape(infer::ShapeRule::flatten, activation(0).value, {attrs.get_int("axis", 1)});
}

// Y = alpha A' B' + beta C, with A' = A or its transpose (a transpose op first), B a
// constant folded into a linear layer's weight [OUT, IN], and C its bias where C is one
// value or one per output; a C that varies along the rows is added after the layer.
void Importer::op_gemm() {
  expect_arity(opset_ < 11 ? 3 : 2, 3);  // C became optional in opset 11
  const NodeAttributes attrs(*node_, here());
  const double alpha = attrs.get_float("alpha", 1.0), beta = attrs.get_float("beta", 1.0);
  const bool trans_b = attrs.get_int("transB", 0) != 0;
  int a = activation(0).value;
  if (attrs.get_int("transA", 0) != 0) {
    Node t;
    t.op = OpKind::transpose;
    t.inputs = {a};
    t.axes = {1, 0};
    a = emit_step(std::move(t), ".transA");
  }
  Node n;
  n.op = OpKind::linear;
  n.inputs = {a};
  const Symbol& b = constant(1, DType::f32, "weight");
  RESNET_CHECK(b.tensor.rank() == 2, here() << ": expected a 2-D weight, found '" << b.name << "' "
                                            << b.tensor.shape_str());
  // Linear keeps weight [OUT, IN], which is B when transB = 1 (torch's export).
  Tensor weight = trans_b ? b.tensor : transposed(b.tensor);
  if (alpha != 1.0) weight = scaled(weight, alpha);
  n.params.push_back({b.name, weight});
  const Symbol* c = has_input(2) && beta != 0.0 ? &constant(2, DType::f32, "bias") : nullptr;
  const int64_t out = weight.dim(0);
  const Shape cs = c ? c->tensor.shape() : Shape{};
  // One value per output ([OUT], [1, OUT]) or one for all ([], [1], [1, 1]): the bias.
  const bool per_output = c && (cs == Shape{out} || cs == (Shape{1, out}));
  const bool one_value = c && c->tensor.numel() == 1 && cs.size() <= 2;
  if (per_output || one_value) {
    Tensor bias = per_output ? c->tensor.reshape({out}) : Tensor::full({out}, c->tensor.f32()[0]);
    if (beta != 1.0) bias = scaled(bias, beta);
    n.params.push_back({c->name, bias});
  }
  if (!c || per_output || one_value) {
    define_activation(emit(std::move(n)));
    return;
  }
  RESNET_CHECK(cs.size() <= 2, here() << ": expected C of at most 2 dimensions, found '" << c->name
                                      << "' " << shape_str(cs));
  const int product = emit_step(std::move(n), ".product");
  Symbol bias = *c;
  if (beta != 1.0) bias.tensor = scaled(c->tensor, beta);
  emit_arithmetic('+', product, bias, false);
}

// A MatMul by a constant matrix of a 2-D input is a linear layer (with the bias of an
// Add after it, see op_add); other ranks are a matmul tensor op.
void Importer::op_matmul() {
  expect_arity(2, 2);
  const int a = activation(0).value;
  const Symbol& b = constant(1, DType::f32, "weight");
  const Shape& as = g_.values[a].shape;
  const bool a_2d = as.empty() ? !shapes_ : as.size() == 2;
  if (b.tensor.rank() != 2 || !a_2d) {
    RESNET_CHECK(b.tensor.rank() >= 2, here() << ": expected a constant matrix of 2 or more "
                                              << "dimensions, found '" << b.name << "' "
                                              << b.tensor.shape_str());
    Node n;
    n.op = OpKind::matmul;
    n.inputs = {a};
    n.params.push_back({b.name, b.tensor});
    define_activation(emit(std::move(n)));
    return;
  }
  Node n;
  n.op = OpKind::linear;
  n.inputs = {a};
  // The parameter keeps its name, transposed to Linear's [OUT, IN].
  n.params.push_back({b.name, transposed(b.tensor)});
  Symbol y;
  y.value = emit(std::move(n));
  bare_matmuls_[node_->output(0)] = g_.nodes.size() - 1;
  define(y);
}

// The flatten before the classifier ([N, -1], [0, -1], [N, C]) is a flatten, which folds
// into it; any other target is a reshape (ONNX's rules: 0 copies, -1 infers).
void Importer::op_reshape() {
  expect_arity(2, 2);
  const NodeAttributes attrs(*node_, here());
  const int x = activation(0).value;
  const std::vector<int64_t> t = constant_ints(1, "shape");
  const bool zero_copies = attrs.get_int("allowzero", 0) == 0;
  bool flatten = t.size() == 2 && !(t[0] == -1 && t[1] == -1);
  const Shape& s = g_.values[x].shape;
  if (flatten && shapes_) {
    int64_t rest = 1;
    for (size_t i = 1; i < s.size(); ++i) rest *= s[i];
    flatten = s.size() >= 2 && (t[0] == s[0] || t[0] == -1 || (t[0] == 0 && zero_copies)) &&
              (t[1] == -1 || t[1] == rest) && (t[0] != -1 || t[1] == rest);
  } else if (flatten) {
    flatten = t[0] == 0 && zero_copies && t[1] == -1;
  }
  if (flatten) {
    define_activation(emit_unary(OpKind::flatten, x));
    return;
  }
  emit_reshape(infer::ShapeRule::reshape, x, t, !zero_copies);
}

}  // namespace resnet::io::detail
