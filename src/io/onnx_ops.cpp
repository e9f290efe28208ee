// One converter per supported ONNX operator, with the attribute defaults of the operator
// spec (opsets 1 to 18; each converter's first opset is in kConverters). Where an operator changed
// within that range, its converter follows the version the model's opset selects (opset_): Pad and
// Slice took attributes before opsets 11 and 10, Clip before 11; Gemm's C was required before 11;
// BatchNormalization had `spatial` before 9. Each reads the current node's inputs through the
// importer's symbol table and either emits graph nodes or binds its output to a constant or alias.
#include <algorithm>
#include <cmath>
#include <limits>

#include "onnx_importer.h"
#include "resnet/core/error.h"

namespace resnet::io::detail {

namespace {

using infer::Node;
using infer::OpKind;
using infer::Window;

// Bound on every size, stride, dilation and padding an attribute or constant gives: far
// beyond any real network, and small enough that no shape computed from it overflows.
constexpr int64_t kMaxExtent = int64_t{1} << 20;

// Whether every element of `v` lies in [lo, kMaxExtent].
bool all_in(const std::vector<int64_t>& v, int64_t lo) {
  for (int64_t x : v)
    if (x < lo || x > kMaxExtent) return false;
  return true;
}

}  // namespace

namespace {

// "two", "four", ...: how messages count a list the attributes must hold.
const char* count_word(size_t n) {
  static const char* const kWords[] = {"zero", "one", "two", "three", "four", "five", "six"};
  return n < 7 ? kWords[n] : "many";
}

}  // namespace

Window Importer::window(const NodeAttributes& attrs, int x, const std::vector<int64_t>& kernel,
                        bool has_dilations) {
  const size_t k = kernel.size();  // spatial axes: 1, 2 or 3
  // Each list of the file's axes, as {d, h, w} with the neutral value where an axis is
  // missing: a 1-D operator runs as the 2-D one of [N, C, 1, L].
  auto axes = [&](const std::vector<int64_t>& v, int64_t neutral) {
    std::vector<int64_t> dhw(3, neutral);
    std::copy(v.begin(), v.end(), dhw.begin() + static_cast<int64_t>(3 - v.size()));
    return dhw;
  };
  const char* names = k == 3   ? "[front, top, left, back, bottom, right]"
                      : k == 2 ? "[top, left, bottom, right]"
                               : "[begin, end]";
  Window w;
  const auto kernel_dhw = axes(kernel, 1);
  w.kernel_d = kernel_dhw[0], w.kernel_h = kernel_dhw[1], w.kernel_w = kernel_dhw[2];
  // strides and dilations: one positive value per spatial axis, 1 where absent.
  auto positive_axes = [&](const char* name) {
    const auto values = attrs.get_ints(name, std::vector<int64_t>(k, 1));
    RESNET_CHECK(values.size() == k && all_in(values, 1),
                 here() << ": expected " << count_word(k) << " " << name << " in [1, " << kMaxExtent
                        << "], found " << ints_str(values));
    return axes(values, 1);
  };
  const auto s = positive_axes("strides");
  w.stride_d = s[0], w.stride_h = s[1], w.stride_w = s[2];
  if (has_dilations) {
    const auto d = positive_axes("dilations");
    w.dilation_d = d[0], w.dilation_h = d[1], w.dilation_w = d[2];
  }
  const std::string auto_pad = attrs.get_string("auto_pad", "NOTSET");
  if (auto_pad == "NOTSET") {
    const auto pads = attrs.get_ints("pads", std::vector<int64_t>(2 * k, 0));
    RESNET_CHECK(pads.size() == 2 * k && all_in(pads, 0),
                 here() << ": expected " << count_word(2 * k) << " pads " << names << " in [0, "
                        << kMaxExtent << "], found " << ints_str(pads));
    const auto begin = axes({pads.begin(), pads.begin() + static_cast<int64_t>(k)}, 0);
    const auto end = axes({pads.begin() + static_cast<int64_t>(k), pads.end()}, 0);
    w.pad_front = begin[0], w.pad_t = begin[1], w.pad_l = begin[2];
    w.pad_back = end[0], w.pad_b = end[1], w.pad_r = end[2];
  } else if (auto_pad == "VALID") {
    // No padding.
  } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    // Output ceil(in / stride); the extra padding goes at the end (UPPER) or start (LOWER).
    const Shape& shape = shape_of(x, "auto_pad SAME_UPPER / SAME_LOWER", k == 3);
    auto split = [&](int64_t in, int64_t kernel_size, int64_t stride, int64_t dilation,
                     int64_t& before, int64_t& after) {
      const int64_t out = (in + stride - 1) / stride;
      const int64_t total =
          std::max<int64_t>(0, (out - 1) * stride + (kernel_size - 1) * dilation + 1 - in);
      before = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      after = total - before;
    };
    // The spatial axes of x: the last k (a 1-D pool's x is [N, C, 1, L] by now).
    const size_t last = shape.size();
    if (k == 3)
      split(shape[last - 3], w.kernel_d, w.stride_d, w.dilation_d, w.pad_front, w.pad_back);
    split(shape[last - 2], w.kernel_h, w.stride_h, w.dilation_h, w.pad_t, w.pad_b);
    split(shape[last - 1], w.kernel_w, w.stride_w, w.dilation_w, w.pad_l, w.pad_r);
  } else {
    RESNET_FAIL(here() << ": expected auto_pad NOTSET, VALID, SAME_UPPER or SAME_LOWER, found '"
                       << auto_pad << "'");
  }
  RESNET_CHECK(auto_pad == "NOTSET" || !attrs.has("pads"),
               here() << ": expected either pads or auto_pad, found both");
  return w;
}

void Importer::op_conv() {
  expect_arity(2, 3);
  const NodeAttributes attrs(*node_, here());
  const Symbol x = activation(0, true);
  const Symbol& weight = constant(1, DType::f32, "weight");
  const Shape& ws = weight.tensor.shape();
  RESNET_CHECK(ws.size() == 4 && all_in(ws, 1),
               here() << ": expected a 4-D weight [OC, IC/group, KH, KW] (2-D convolution) of "
                         "positive sizes, found '"
                      << weight.name << "' " << shape_str(ws));
  const auto kernel = attrs.get_ints("kernel_shape", {ws[2], ws[3]});
  RESNET_CHECK(kernel == (std::vector<int64_t>{ws[2], ws[3]}),
               here() << ": kernel_shape " << ints_str(kernel) << " does not match the weight '"
                      << weight.name << "' " << shape_str(ws));
  Node n;
  n.op = OpKind::conv;
  n.inputs = {x.value};
  n.window = window(attrs, x.value, {ws[2], ws[3]}, true);
  n.window.groups = attrs.get_int("group", 1);
  RESNET_CHECK(
      n.window.groups >= 1 && n.window.groups <= kMaxExtent,
      here() << ": expected group in [1, " << kMaxExtent << "], found " << n.window.groups);
  if (x.has_pending_pad()) {
    RESNET_CHECK(attrs.get_string("auto_pad", "NOTSET") == "NOTSET",
                 here() << ": a Pad before a Conv with auto_pad is not supported");
    n.window.pad_t += x.pending_pad[0], n.window.pad_l += x.pending_pad[1];
    n.window.pad_b += x.pending_pad[2], n.window.pad_r += x.pending_pad[3];
  }
  n.weight_steps = weight.quant_steps;
  if (n.weight_steps.size() == 1)
    n.weight_steps.assign(static_cast<size_t>(ws[0]), n.weight_steps[0]);
  n.params.push_back({weight.name, weight.tensor});
  if (has_input(2)) {
    const Symbol& bias = constant(2, DType::f32, "bias");
    n.params.push_back({bias.name, bias.tensor});
  }
  define_activation(emit(std::move(n)));
}

void Importer::op_batch_norm() {
  const NodeAttributes attrs(*node_, here());
  // training_mode (opset 14 on): the batch's statistics, and the running ones as the
  // outputs after Y. Before it, the outputs after Y were training's and stay unread.
  const bool training = opset_ >= 14 && attrs.get_int("training_mode", 0) != 0;
  RESNET_CHECK(
      attrs.get_int("training_mode", 0) == 0 || attrs.get_int("training_mode", 0) == 1,
      here() << ": expected training_mode 0 or 1, found " << attrs.get_int("training_mode", 0));
  expect_arity(5, 5, training ? 2 : 0);
  // Opsets 7 and 8: spatial=0 normalises every (C, H, W) element on its own.
  RESNET_CHECK(opset_ >= 9 || attrs.get_int("spatial", 1) == 1,
               here() << ": expected spatial 1 (one mean and variance per channel), found "
                      << attrs.get_int("spatial", 1));
  Node n;
  n.op = OpKind::batch_norm;
  n.inputs = {activation(0).value};
  // ONNX stores epsilon as a float: 1e-5 arrives as 9.99999975e-06, which moves the
  // result by far less than float rounding.
  n.eps = attrs.get_float("epsilon", 1e-5);
  n.training = training;
  n.momentum = attrs.get_float("momentum", 0.9);
  RESNET_CHECK(std::isfinite(n.momentum),
               here() << ": expected a finite momentum, found " << n.momentum);
  const char* roles[] = {"scale", "bias", "mean", "variance"};
  for (int i = 1; i <= 4; ++i) {
    const Symbol& p = constant(i, DType::f32, roles[i - 1]);
    n.params.push_back({p.name, p.tensor});
  }
  n.extra_outputs = read_extra_outputs(training ? 2 : 0);
  const std::vector<int> extra = n.extra_outputs;
  define_activation(emit(std::move(n)));
  define_extra_outputs(extra);
}

void Importer::op_relu() {
  expect_arity(1, 1);
  define_activation(emit_unary(OpKind::relu, activation(0).value));
}

void Importer::op_add() {
  expect_arity(2, 2);
  const bool c0 = input(0).kind == Symbol::Kind::constant;
  const bool c1 = input(1).kind == Symbol::Kind::constant;
  if (!c0 && !c1) {
    Node n;
    n.op = OpKind::add;
    n.inputs = {activation(0).value, activation(1).value};
    define_activation(emit(std::move(n)));
    return;
  }
  // A MatMul's bias: MatMul then Add of a 1-D constant is a Linear layer.
  const int a = c0 ? 1 : 0;
  const std::string& product = node_->input(a);
  auto it = bare_matmuls_.find(product);
  if (c0 && c1) return op_channel_affine('+');  // refused there, in its words
  if (it == bare_matmuls_.end() || reads_[product] != 1) return op_channel_affine('+');
  const Symbol& bias = constant(1 - a, DType::f32, "bias");
  Node& linear = g_.nodes[it->second];
  const int64_t out = linear.params[0].value.dim(0);
  const Shape& bs = bias.tensor.shape();
  RESNET_CHECK(bs == Shape{out} || bs == (Shape{1, out}), here() << ": expected the bias '"
                                                                 << bias.name << "' to be [" << out
                                                                 << "], found " << shape_str(bs));
  linear.params.push_back({bias.name, bias.tensor.reshape({out})});
  // A grid the product was quantized on (QLinearMatMul) is not the sum's.
  g_.values[linear.output].quant.reset();
  bare_matmuls_.erase(it);
  check_shapes(linear.output);
  define_activation(linear.output);
}

// 2-D and 3-D pooling; a 1-D pool over [N, C, L] runs as the 2-D pool of [N, C, 1, L],
// between two reshapes. MaxPool may write its Indices (opset 8 on).
void Importer::op_pool(bool is_max) {
  const int indices = is_max && opset_ >= 8 ? 1 : 0;
  expect_arity(1, 1, indices);
  const NodeAttributes attrs(*node_, here());
  const auto kernel = attrs.get_ints("kernel_shape", {});
  const bool one_d = kernel.size() == 1;
  RESNET_CHECK(kernel.size() >= 1 && kernel.size() <= 3 && all_in(kernel, 1),
               here() << ": expected kernel_shape of one, two or three sizes in [1, " << kMaxExtent
                      << "] (1-D, 2-D or 3-D pooling), found " << ints_str(kernel));
  // MaxPool reads the integers of a QuantizeLinear as well (QLinear graphs): the maximum
  // of quantized values is the quantized maximum, so its output keeps their grid.
  const bool two_d = kernel.size() == 2;
  Symbol x = activation(0, !is_max && two_d, is_max && two_d);
  // A window of k axes reads [N, C, k axes] (a 1-D one [N, C, L], made 4-D below).
  if (shapes_ && !one_d) shape_of(x.value, "a pool of this kernel_shape", kernel.size() == 3);
  RESNET_CHECK(!shapes_ || !one_d || g_.values[x.value].shape.size() == 3,
               here() << ": a pool of this kernel_shape needs a 3-D input [N, C, L], found "
                      << shape_str(g_.values[x.value].shape));
  if (one_d) {
    Node up;
    up.op = OpKind::reshape;
    up.inputs = {x.value};
    up.shape_rule = infer::ShapeRule::unsqueeze;
    up.axes = {2};
    x.value = emit_step(std::move(up), ".as_2d");
  }
  Node n;
  n.op = is_max ? OpKind::max_pool : OpKind::avg_pool;
  n.inputs = {x.value};
  // AveragePool has dilations only from opset 19, which this importer does not read.
  n.window = window(attrs, x.value, kernel, is_max);
  n.window.ceil_mode = attrs.get_int("ceil_mode", 0) != 0;
  if (!is_max) n.window.count_include_pad = attrs.get_int("count_include_pad", 0) != 0;
  if (x.has_pending_pad()) {
    // Zeros before the pool count in every window's average exactly as the pool's own
    // padding does with count_include_pad, as long as no ceil_mode window reaches past it.
    RESNET_CHECK(n.window.count_include_pad && !n.window.ceil_mode &&
                     attrs.get_string("auto_pad", "NOTSET") == "NOTSET",
                 here() << ": reads '" << node_->input(0)
                        << "', zero-padded by a Pad; that folds into an AveragePool only with "
                           "count_include_pad=1, ceil_mode=0 and no auto_pad");
    n.window.pad_t += x.pending_pad[0], n.window.pad_l += x.pending_pad[1];
    n.window.pad_b += x.pending_pad[2], n.window.pad_r += x.pending_pad[3];
  }
  n.extra_outputs = read_extra_outputs(indices);
  if (!n.extra_outputs.empty()) {
    const int64_t order = attrs.get_int("storage_order", 0);
    RESNET_CHECK(
        order == 0 || order == 1,
        here() << ": expected storage_order 0 (row major) or 1 (column major), found " << order);
    RESNET_CHECK(!one_d, here() << ": Indices of a 1-D MaxPool are not supported");
    n.indices_column_major = order == 1;
  }
  const std::vector<int> extra = n.extra_outputs;
  if (!one_d) {
    define_rearranged(emit(std::move(n)), x);
    define_extra_outputs(extra);
    return;
  }
  const int pooled = emit_step(std::move(n), ".pool_2d");
  emit_reshape(infer::ShapeRule::squeeze, pooled, {2});
}

void Importer::op_global_avg_pool() {
  expect_arity(1, 1);
  define_activation(emit_unary(OpKind::global_avg_pool, activation(0).value));
}

void Importer::op_identity() {
  expect_arity(1, 1);
  Symbol s = input(0);
  // A constant keeps its data under the name its readers use (torch writes Identity from a
  // shared initializer to each parameter's state_dict name).
  if (s.kind == Symbol::Kind::constant) s.name = node_->output(0);
  define(s);
}

void Importer::op_constant() {
  expect_arity(0, 0);
  const NodeAttributes attrs(*node_, here());
  Symbol s;
  s.kind = Symbol::Kind::constant;
  s.name = node_->output(0);
  if (const auto* a = attrs.get("value", onnx::AttributeProto_AttributeType_TENSOR)) {
    s.proto = &a->t();
  } else if (attrs.has("value_int") || attrs.has("value_ints")) {
    const auto v = attrs.has("value_int") ? std::vector<int64_t>{attrs.get_int("value_int", 0)}
                                          : attrs.get_ints("value_ints", {});
    s.tensor = Tensor(attrs.has("value_int") ? Shape{} : Shape{static_cast<int64_t>(v.size())},
                      DType::i64);
    std::copy(v.begin(), v.end(), s.tensor.i64());
  } else if (attrs.has("value_float") || attrs.has("value_floats")) {
    std::vector<float> v;
    if (attrs.has("value_float")) {
      v.push_back(static_cast<float>(attrs.get_float("value_float", 0)));
    } else {
      const auto* a = attrs.get("value_floats", onnx::AttributeProto_AttributeType_FLOATS);
      v.assign(a->floats().begin(), a->floats().end());
    }
    s.tensor = attrs.has("value_float") ? Tensor::full({}, v[0])
                                        : Tensor::from_vector({static_cast<int64_t>(v.size())}, v);
  } else {
    RESNET_FAIL(here() << ": expected a value, value_float(s) or value_int(s) attribute");
  }
  // A Constant's own tensor has a name of its own, often empty: name it by the output.
  define(s);
}

// Pad's pads as one list [n, c, h, w begins, then ends] of a 4-D input: the attribute
// before opset 11, the input after, and from opset 18 on the axes it names only.
std::vector<int64_t> Importer::pad_amounts(const NodeAttributes& attrs) {
  if (opset_ < 11) {
    RESNET_CHECK(attrs.has("pads"), here() << ": expected a pads attribute, found none");
    RESNET_CHECK(attrs.get_float("value", 0.0) == 0.0,
                 here() << ": expected a zero value, found " << attrs.get_float("value", 0.0));
    return attrs.get_ints("pads", {});
  }
  if (has_input(2)) {
    const Symbol& value = constant(2, DType::f32, "constant_value");
    RESNET_CHECK(value.tensor.numel() == 1 && value.tensor.f32()[0] == 0.0f,
                 here() << ": expected a zero constant_value, found '" << value.name << "'");
  }
  const std::vector<int64_t> p = constant_ints(1, "pads");
  if (!has_input(3)) return p;
  const std::vector<int64_t> axes = constant_ints(3, "axes");
  RESNET_CHECK(p.size() == 2 * axes.size(), here() << ": expected two pads per axis of "
                                                   << ints_str(axes) << ", found " << ints_str(p));
  std::vector<int64_t> all(8, 0);
  for (size_t i = 0; i < axes.size(); ++i) {
    const int64_t axis = axes[i] < 0 ? axes[i] + 4 : axes[i];
    RESNET_CHECK(axis >= 0 && axis < 4,
                 here() << ": expected axes of a 4-D input, found " << ints_str(axes));
    all[static_cast<size_t>(axis)] = p[i];
    all[static_cast<size_t>(axis) + 4] = p[i + axes.size()];
  }
  return all;
}

void Importer::op_pad() {
  if (opset_ < 11) {
    expect_arity(1, 1);
  } else {
    expect_arity(2, opset_ < 18 ? 3 : 4);
  }
  const NodeAttributes attrs(*node_, here());
  const std::string mode = attrs.get_string("mode", "constant");
  RESNET_CHECK(mode == "constant",
               here() << ": expected mode 'constant' (zero padding), found '" << mode << "'");
  Symbol x = activation(0, true);
  const std::vector<int64_t> p = pad_amounts(attrs);
  // [n_begin, c_begin, h_begin, w_begin, n_end, c_end, h_end, w_end] for a 4-D input.
  RESNET_CHECK(p.size() == 8 && p[0] == 0 && p[4] == 0 && all_in(p, 0),
               here() << ": expected pads of a 4-D input on C, H and W only, each in [0, "
                      << kMaxExtent << "], found " << ints_str(p));
  if (p[1] || p[5]) {
    Node n;
    n.op = OpKind::pad_channels;
    n.inputs = {x.value};
    n.pads = {p[1], p[5]};
    x.value = emit(std::move(n));
  }
  // Zero padding commutes with padding channels: accumulate it for the next Conv or pool.
  x.pending_pad[0] += p[2], x.pending_pad[1] += p[3];
  x.pending_pad[2] += p[6], x.pending_pad[3] += p[7];
  define(x);
}

void Importer::op_slice() {
  // Before opset 10, starts, ends and axes were attributes, and there were no steps.
  expect_arity(opset_ < 10 ? 1 : 3, opset_ < 10 ? 1 : 5);
  const NodeAttributes attrs(*node_, here());
  Symbol x = activation(0);
  auto ints = [&](int i, const char* role) {
    if (opset_ < 10) {
      RESNET_CHECK(attrs.has(role), here() << ": expected a " << role << " attribute, found none");
      return attrs.get_ints(role, {});
    }
    return constant_ints(i, role);
  };
  const auto starts = ints(1, "starts"), ends = ints(2, "ends");
  std::vector<int64_t> axes, steps(starts.size(), 1);
  for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  if (has_input(3) || (opset_ < 10 && attrs.has("axes"))) axes = ints(3, "axes");
  if (has_input(4)) steps = ints(4, "steps");
  RESNET_CHECK(
      ends.size() == starts.size() && axes.size() == starts.size() && steps.size() == starts.size(),
      here() << ": expected starts, ends, axes and steps of one length, found " << ints_str(starts)
             << ", " << ints_str(ends) << ", " << ints_str(axes) << ", " << ints_str(steps));
  // Only x[:, :, ::sh, ::sw]: every slice starts at 0 and runs to the end of its axis.
  int64_t stride[4] = {1, 1, 1, 1};
  for (size_t i = 0; i < axes.size(); ++i) {
    const int64_t axis = axes[i] < 0 ? axes[i] + 4 : axes[i];
    RESNET_CHECK(axis >= 0 && axis < 4,
                 here() << ": expected axes of a 4-D input, found " << ints_str(axes));
    // Ends past the axis clamp to it; torch writes INT64_MAX. A smaller end must be
    // checked against the axis, which needs a known shape.
    const bool to_end = ends[i] >= std::numeric_limits<int32_t>::max() ||
                        (shapes_ && ends[i] >= shape_of(x.value, "Slice")[axis]);
    RESNET_CHECK(starts[i] == 0 && to_end && steps[i] >= 1 && steps[i] <= kMaxExtent,
                 here() << ": expected a slice from 0 to the end with a positive step on axis "
                        << axes[i] << ", found start " << starts[i] << ", end " << ends[i]
                        << ", step " << steps[i]);
    RESNET_CHECK(steps[i] == 1 || axis >= 2, here()
                                                 << ": expected steps only on H and W, found step "
                                                 << steps[i] << " on axis " << axes[i]);
    stride[axis] *= steps[i];
  }
  if (stride[2] == 1 && stride[3] == 1) return define(x);  // the whole tensor
  // torch writes x[:, :, ::2, ::2] as one Slice per axis: the second joins the first.
  const std::string& in_name = node_->input(0);
  auto prev = subsamples_.find(in_name);
  if (prev != subsamples_.end() && reads_[in_name] == 1) {
    Node& s = g_.nodes[prev->second];
    RESNET_CHECK(
        s.window.stride_h * stride[2] <= kMaxExtent && s.window.stride_w * stride[3] <= kMaxExtent,
        here() << ": the strides of consecutive Slices exceed " << kMaxExtent);
    s.window.stride_h *= stride[2];
    s.window.stride_w *= stride[3];
    check_shapes(s.output);
    subsamples_[node_->output(0)] = prev->second;
    subsamples_.erase(in_name);
    return define(x);
  }
  Node n;
  n.op = OpKind::subsample;
  n.inputs = {x.value};
  n.window.stride_h = stride[2];
  n.window.stride_w = stride[3];
  Symbol y;
  y.value = emit(std::move(n));
  subsamples_[node_->output(0)] = g_.nodes.size() - 1;
  define(y);
}

}  // namespace resnet::io::detail
