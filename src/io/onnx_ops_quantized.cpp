// Quantized ONNX models, in the two forms ONNX Runtime's quantizer and the Model Zoo write:
//
// - QDQ: float operators with QuantizeLinear -> DequantizeLinear pairs around them, and
//   weights stored as INT8 initializers read through a DequantizeLinear;
// - QLinear operators (QLinearConv, QLinearMatMul, and ONNX Runtime's QLinearAdd and
//   QLinearGlobalAveragePool): each is expanded here into the QDQ form it means, a
//   DequantizeLinear of every input, the float operator, and a QuantizeLinear of its
//   output, so that one translation (the converters below) serves both forms.
//
// The graph stays float: a weight becomes its dequantized values, which are exact, and
// remembers its step per output channel (Node::weight_steps); a quantized activation is
// the float value it came from, which remembers the grid (Value::quant). int8 inference
// then runs on the file's grids (Calibration::from_graph) instead of a calibration of ours,
// and f32 or bf16 inference computes what the file means without the rounding.
//
// A grid that starts at 0 (zero point = the lowest integer) clamps negative values to 0:
// quantizers drop a ReLU whose output range they quantize this way, so such a
// QuantizeLinear of a value that could be negative becomes a Relu here.
#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "onnx_importer.h"
#include "onnx_tensor.h"
#include "resnet/core/error.h"

namespace resnet::io::detail {

using infer::OpKind;
using infer::Quantization;

namespace {

// The integer range of a zero point's ONNX type (UINT8 when the zero point is omitted).
void set_range(Quantization& q, int onnx_type) {
  if (onnx_type == onnx::TensorProto_DataType_INT8) {
    q.qmin = -128, q.qmax = 127;
  } else if (onnx_type == onnx::TensorProto_DataType_INT32) {
    q.qmin = std::numeric_limits<int32_t>::min(), q.qmax = std::numeric_limits<int32_t>::max();
  } else {
    q.qmin = 0, q.qmax = 255;
  }
}

bool same_grid(const Quantization& a, const Quantization& b) {
  return a.scale == b.scale && a.zero_point == b.zero_point && a.qmin == b.qmin && a.qmax == b.qmax;
}

std::string grid_str(const Quantization& q) {
  std::ostringstream s;
  s << "scale " << q.scale << ", zero point " << q.zero_point << " in [" << q.qmin << ", " << q.qmax
    << "]";
  return s.str();
}

}  // namespace

Quantization Importer::grid(int scale_i, int zp_i, const char* role) {
  const Tensor& scale = constant(scale_i, DType::f32, "scale").tensor;
  RESNET_CHECK(scale.numel() == 1, here() << ": expected one " << role
                                          << " scale (per tensor), found " << scale.numel()
                                          << "; per-axis quantization of an activation is not "
                                             "supported");
  Quantization q;
  q.scale = scale.f32()[0];
  RESNET_CHECK(std::isfinite(q.scale) && q.scale > 0,
               here() << ": expected a finite positive " << role << " scale, found " << q.scale);
  int type = onnx::TensorProto_DataType_UINT8;
  if (has_input(zp_i)) {
    const Symbol& zp = integer_constant(zp_i, "zero point");
    RESNET_CHECK(zp.tensor.numel() == 1,
                 here() << ": expected one " << role << " zero point, found " << zp.tensor.numel());
    type = zp.proto->data_type();
    RESNET_CHECK(type != onnx::TensorProto_DataType_INT32,
                 here() << ": expected an INT8 or UINT8 " << role << " zero point, found INT32");
    q.zero_point = static_cast<int32_t>(zp.tensor.i64()[0]);
  }
  set_range(q, type);
  return q;
}

bool Importer::non_negative(int v) const {
  if (g_.values[v].quant.has_value() && g_.values[v].quant->lowest() >= 0) return true;
  for (const infer::Node& n : g_.nodes) {
    if (n.output != v) continue;
    if (n.op == OpKind::relu) return true;
    const bool pool = n.op == OpKind::max_pool || n.op == OpKind::avg_pool ||
                      n.op == OpKind::global_avg_pool || n.op == OpKind::flatten ||
                      n.op == OpKind::subsample || n.op == OpKind::pad_channels;
    return pool && non_negative(n.inputs[0]);
  }
  return false;
}

void Importer::op_quantize_linear() {
  expect_arity(2, 3);
  RESNET_CHECK(input(0).kind == Symbol::Kind::activation,
               here() << ": quantizing the constant '" << node_->input(0)
                      << "' is not supported; store it quantized (an INT8 initializer read "
                         "through a DequantizeLinear)");
  const Symbol x = activation(0);
  const Quantization q = grid(1, 2, "output");
  int v = x.value;
  if (q.zero_point == q.qmin && !non_negative(v)) {
    v = emit_unary(OpKind::relu, v);
  } else {
    carry_bare_matmul();
  }
  // A value quantized twice keeps its first grid (ONNX Runtime writes one per value).
  if (!g_.values[v].quant.has_value()) g_.values[v].quant = q;
  Symbol s;
  s.value = v;
  s.quant = q;
  define(std::move(s));
}

void Importer::op_dequantize_linear() {
  expect_arity(2, 3);
  const NodeAttributes attrs(*node_, here());
  if (input(0).kind == Symbol::Kind::constant)
    return define(dequantized_constant(attrs.get_int("axis", 1)));
  const Symbol x = activation(0, true, true);
  RESNET_CHECK(x.quant.has_value(),
               here() << ": expected input 0 ('" << node_->input(0)
                      << "') to be quantized (a QuantizeLinear's output), found float values");
  const Quantization q = grid(1, 2, "input");
  RESNET_CHECK(same_grid(q, *x.quant), here() << ": dequantizes with " << grid_str(q) << ", but '"
                                              << node_->input(0) << "' was quantized with "
                                              << grid_str(*x.quant));
  Symbol out = x;
  out.quant.reset();
  define(std::move(out));
  carry_bare_matmul();
}

Symbol Importer::dequantized_constant(int64_t axis) {
  const Symbol& data = integer_constant(0, "quantized data");
  const Tensor& q = data.tensor;
  const Tensor& scale = constant(1, DType::f32, "scale").tensor;
  const int64_t rank = static_cast<int64_t>(q.shape().size());
  const bool per_axis = scale.numel() != 1;
  if (axis < 0) axis += rank;
  if (per_axis)
    RESNET_CHECK(
        scale.shape().size() == 1 && axis >= 0 && axis < rank && q.dim(axis) == scale.numel(),
        here() << ": expected one scale, or one per slice along axis " << axis << " of '"
               << data.name << "' " << shape_str(q.shape()) << ", found "
               << shape_str(scale.shape()));
  Tensor zp = Tensor({scale.numel()}, DType::i64);
  std::fill(zp.i64(), zp.i64() + zp.numel(), int64_t{0});
  if (has_input(2)) {
    const Symbol& z = integer_constant(2, "zero point");
    RESNET_CHECK(z.tensor.numel() == scale.numel(),
                 here() << ": expected as many zero points as scales (" << scale.numel()
                        << "), found " << z.tensor.numel());
    RESNET_CHECK(z.proto->data_type() == data.proto->data_type(),
                 here() << ": the zero point is " << onnx_dtype_name(z.proto->data_type())
                        << ", the data '" << data.name << "' "
                        << onnx_dtype_name(data.proto->data_type()));
    std::copy(z.tensor.i64(), z.tensor.i64() + z.tensor.numel(), zp.i64());
  }
  // The slice index of element i along `axis`: (i / inner) % extent.
  int64_t inner = 1;
  for (int64_t d = axis + 1; per_axis && d < rank; ++d) inner *= q.dim(d);
  const int64_t extent = per_axis ? q.dim(axis) : 1;
  Symbol s;
  s.kind = Symbol::Kind::constant;
  s.proto = data.proto;
  s.name = data.name;
  s.tensor = Tensor(q.shape(), DType::f32);
  bool symmetric = true;
  for (int64_t c = 0; c < zp.numel(); ++c) symmetric = symmetric && zp.i64()[c] == 0;
  for (int64_t i = 0; i < q.numel(); ++i) {
    const int64_t c = per_axis ? (i / inner) % extent : 0;
    s.tensor.f32()[i] =
        static_cast<float>(static_cast<double>(q.i64()[i] - zp.i64()[c]) * scale.f32()[c]);
  }
  // Steps per output channel (axis 0) on a symmetric grid: what int8 convolutions take.
  if (symmetric && (!per_axis || axis == 0))
    s.quant_steps.assign(scale.f32(), scale.f32() + scale.numel());
  return s;
}

void Importer::carry_bare_matmul() {
  auto it = bare_matmuls_.find(node_->input(0));
  if (it == bare_matmuls_.end() || reads_[node_->input(0)] > 1) return;
  bare_matmuls_[node_->output(0)] = it->second;
  bare_matmuls_.erase(node_->input(0));
}

// --- QLinear operators, as the QDQ nodes they mean ---

void Importer::convert_part(onnx::NodeProto n) {
  const onnx::NodeProto* whole = node_;
  parts_.push_back(std::move(n));
  node_ = &parts_.back();
  run_converter("");
  node_ = whole;
}

std::string Importer::dequantized_input(int x, int scale, int zp, int64_t axis) {
  const std::string name = node_->output(0) + "/dequantized_" + std::to_string(x);
  onnx::NodeProto dq;
  dq.set_op_type("DequantizeLinear");
  dq.add_input(node_->input(x));
  dq.add_input(node_->input(scale));
  if (has_input(zp)) dq.add_input(node_->input(zp));
  dq.add_output(name);
  if (axis >= 0) {
    onnx::AttributeProto& a = *dq.add_attribute();
    a.set_name("axis"), a.set_type(onnx::AttributeProto::INT), a.set_i(axis);
  }
  convert_part(std::move(dq));
  return name;
}

namespace {

// The float operator `op` of a QLinear node, reading `inputs`, writing `output`, with the
// QLinear node's attributes (the same as the float operator's).
onnx::NodeProto float_part(const onnx::NodeProto& qlinear, const char* op,
                           const std::vector<std::string>& inputs, const std::string& output) {
  onnx::NodeProto n;
  n.set_op_type(op);
  for (const std::string& i : inputs) n.add_input(i);
  n.add_output(output);
  for (const onnx::AttributeProto& a : qlinear.attribute())
    if (a.name() != "channels_last") *n.add_attribute() = a;
  return n;
}

onnx::NodeProto quantize_part(const onnx::NodeProto& qlinear, const std::string& x, int scale,
                              int zp) {
  onnx::NodeProto q;
  q.set_op_type("QuantizeLinear");
  q.add_input(x);
  q.add_input(qlinear.input(scale));
  if (zp < qlinear.input_size()) q.add_input(qlinear.input(zp));
  q.add_output(qlinear.output(0));
  return q;
}

}  // namespace

void Importer::op_qlinear_conv() {
  expect_arity(8, 9);
  const std::string x = dequantized_input(0, 1, 2);
  // The weight per output channel (axis 0), the INT32 bias on the step x_scale * w_scale.
  std::vector<std::string> inputs{x, dequantized_input(3, 4, 5, 0)};
  if (has_input(8)) {
    const float x_scale = grid(1, 2, "input").scale;
    const Tensor& w_scale = constant(4, DType::f32, "weight scale").tensor;
    const Symbol& b = integer_constant(8, "bias");
    const int64_t oc = b.tensor.numel();
    RESNET_CHECK(w_scale.numel() == 1 || w_scale.numel() == oc,
                 here() << ": expected 1 or " << oc << " weight scales, found " << w_scale.numel());
    Symbol bias;
    bias.kind = Symbol::Kind::constant;
    bias.proto = b.proto;
    bias.name = b.name;
    bias.tensor = Tensor({oc}, DType::f32);
    for (int64_t o = 0; o < oc; ++o)
      bias.tensor.f32()[o] = static_cast<float>(static_cast<double>(b.tensor.i64()[o]) * x_scale *
                                                w_scale.f32()[w_scale.numel() == 1 ? 0 : o]);
    inputs.push_back(node_->output(0) + "/bias");
    symbols_[inputs.back()] = std::move(bias);
  }
  const std::string y = node_->output(0) + "/float";
  convert_part(float_part(*node_, "Conv", inputs, y));
  convert_part(quantize_part(*node_, y, 6, 7));
}

void Importer::op_qlinear_matmul() {
  expect_arity(8, 8);
  const std::string a = dequantized_input(0, 1, 2);
  // B is [K, N]: its scales, when per column, lie along axis 1.
  const std::string b = dequantized_input(3, 4, 5, 1);
  const std::string y = node_->output(0) + "/float";
  convert_part(float_part(*node_, "MatMul", {a, b}, y));
  convert_part(quantize_part(*node_, y, 6, 7));
}

void Importer::op_qlinear_add() {
  expect_arity(7, 8);
  const std::string a = dequantized_input(0, 1, 2);
  const std::string b = dequantized_input(3, 4, 5);
  const std::string y = node_->output(0) + "/float";
  convert_part(float_part(*node_, "Add", {a, b}, y));
  convert_part(quantize_part(*node_, y, 6, 7));
}

void Importer::op_qlinear_global_avg_pool() {
  expect_arity(4, 5);
  const NodeAttributes attrs(*node_, here());
  RESNET_CHECK(attrs.get_int("channels_last", 0) == 0,
               here() << ": expected channels_last 0 (NCHW), found 1");
  const std::string x = dequantized_input(0, 1, 2);
  const std::string y = node_->output(0) + "/float";
  convert_part(float_part(*node_, "GlobalAveragePool", {x}, y));
  convert_part(quantize_part(*node_, y, 3, 4));
}

}  // namespace resnet::io::detail
