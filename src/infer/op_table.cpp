#include "resnet/infer/op_table.h"

#include <algorithm>
#include <cmath>
#include "resnet/core/error.h"

namespace resnet::infer {

std::string describe(const Node& n) {
  return std::string("node '") + n.name + "' (" + op_name(n.op) + ")";
}

namespace {

bool known(int64_t d) {
  return d != kUnknownDim;
}

// --- parameter checks -----------------------------------------------------------------

void check_rank(const Node& n, size_t i, int rank) {
  const Tensor& t = n.params[i].value;
  RESNET_CHECK(t.defined() && t.rank() == rank && t.dtype() == DType::f32,
               describe(n) << ": parameter '" << n.params[i].name << "' expected a " << rank
                           << "-D f32 tensor, found "
                           << (t.defined() ? t.shape_str() + " " + dtype_name(t.dtype())
                                           : std::string("nothing")));
}

// An optional bias (params[1]) of `size` elements.
void check_bias(const Node& n, int64_t size) {
  if (n.params.size() < 2) return;
  check_rank(n, 1, 1);
  RESNET_CHECK(n.params[1].value.dim(0) == size,
               describe(n) << ": bias '" << n.params[1].name << "' expected [" << size
                           << "], found " << n.params[1].value.shape_str());
}

void check_conv(const Node& n) {
  check_rank(n, 0, 4);
  const int64_t oc = n.params[0].value.dim(0);
  RESNET_CHECK(n.window.groups >= 1 && oc % n.window.groups == 0,
               describe(n) << ": " << oc << " output channels do not split into " << n.window.groups
                           << " groups");
  check_bias(n, oc);
}

void check_batch_norm(const Node& n) {
  for (size_t i = 0; i < 4; ++i) check_rank(n, i, 1);
  const int64_t c = n.params[0].value.dim(0);
  for (size_t i = 1; i < 4; ++i)
    RESNET_CHECK(n.params[i].value.dim(0) == c, describe(n) << ": parameter '" << n.params[i].name
                                                            << "' expected [" << c << "], found "
                                                            << n.params[i].value.shape_str());
}

void check_linear(const Node& n) {
  check_rank(n, 0, 2);
  check_bias(n, n.params[0].value.dim(0));
}

void check_pad_channels(const Node& n) {
  RESNET_CHECK(n.pads.size() == 2 && n.pads[0] >= 0 && n.pads[1] >= 0,
               describe(n) << ": expected two non-negative channel pads");
}

// --- shapes ---------------------------------------------------------------------------

void need_rank4(const Node& n, const Shape& x) {
  RESNET_CHECK(x.size() == 4, describe(n) << ": expected a 4-D input, found " << shape_str(x));
}

// [N, c, OH, OW] for conv and the pools.
Shape windowed(const Node& n, const Shape& x, int64_t c) {
  need_rank4(n, x);
  const Window& w = n.window;
  int64_t oh = kUnknownDim, ow = kUnknownDim;
  if (known(x[2]))
    oh = window_out_size(x[2], w.kernel_h, w.stride_h, w.pad_t, w.pad_b, w.dilation_h, w.ceil_mode);
  if (known(x[3]))
    ow = window_out_size(x[3], w.kernel_w, w.stride_w, w.pad_l, w.pad_r, w.dilation_w, w.ceil_mode);
  RESNET_CHECK((oh > 0 || oh == kUnknownDim) && (ow > 0 || ow == kUnknownDim),
               describe(n) << ": a " << w.kernel_h << "x" << w.kernel_w
                           << " window does not fit the input " << shape_str(x));
  return Shape{x[0], c, oh, ow};
}

Shape conv_shape(const Node& n, const std::vector<const Shape*>& in) {
  const Shape& x = *in[0];
  const Shape& ws = n.params[0].value.shape();
  const Window& w = n.window;
  need_rank4(n, x);
  RESNET_CHECK(!known(x[1]) || x[1] == ws[1] * w.groups,
               describe(n) << ": weight '" << n.params[0].name << "' " << shape_str(ws) << " with "
                           << w.groups << " group(s) expects " << ws[1] * w.groups
                           << " input channels, found " << shape_str(x));
  RESNET_CHECK(ws[2] == w.kernel_h && ws[3] == w.kernel_w,
               describe(n) << ": weight " << shape_str(ws) << " does not match kernel "
                           << w.kernel_h << "x" << w.kernel_w);
  return windowed(n, x, ws[0]);
}

Shape batch_norm_shape(const Node& n, const std::vector<const Shape*>& in) {
  const Shape& x = *in[0];
  RESNET_CHECK(x.size() >= 2 && (!known(x[1]) || x[1] == n.params[0].value.dim(0)),
               describe(n) << ": expected " << n.params[0].value.dim(0) << " channels, found "
                           << shape_str(x));
  return x;
}

Shape same_shape(const Node&, const std::vector<const Shape*>& in) {
  return *in[0];
}

// One shape: a size one side does not know, the other may.
Shape add_shape(const Node& n, const std::vector<const Shape*>& in) {
  const Shape &a = *in[0], &b = *in[1];
  bool same = a.size() == b.size();
  Shape y = a;
  for (size_t i = 0; same && i < a.size(); ++i) {
    same = !known(a[i]) || !known(b[i]) || a[i] == b[i];
    if (!known(y[i])) y[i] = b[i];
  }
  RESNET_CHECK(same, describe(n) << ": expected two inputs of one shape, found " << shape_str(a)
                                 << " and " << shape_str(b));
  return y;
}

// [N, C, OH, OW], or [N, C, OD, OH, OW] for a pool of [N, C, D, H, W].
Shape pool_shape(const Node& n, const std::vector<const Shape*>& in) {
  const Shape& x = *in[0];
  const Window& w = n.window;
  RESNET_CHECK(x.size() == 4 || x.size() == 5,
               describe(n) << ": expected a 4-D [N, C, H, W] or 5-D [N, C, D, H, W] input, found "
                           << shape_str(x));
  if (x.size() == 4) {
    RESNET_CHECK(w.kernel_d == 1 && w.stride_d == 1 && w.pad_front == 0 && w.pad_back == 0 &&
                     w.dilation_d == 1,
                 describe(n) << ": a 3-D window expects a 5-D input [N, C, D, H, W], found "
                             << shape_str(x));
    return windowed(n, x, x[1]);
  }
  const Shape hw = windowed(n, Shape{x[0], x[1], x[3], x[4]}, x[1]);
  int64_t od = kUnknownDim;
  if (known(x[2]))
    od = window_out_size(x[2], w.kernel_d, w.stride_d, w.pad_front, w.pad_back, w.dilation_d,
                         w.ceil_mode);
  RESNET_CHECK(od > 0 || od == kUnknownDim,
               describe(n) << ": a " << w.kernel_d << "x" << w.kernel_h << "x" << w.kernel_w
                           << " window does not fit the input " << shape_str(x));
  return {x[0], x[1], od, hw[2], hw[3]};
}

Shape global_pool_shape(const Node& n, const std::vector<const Shape*>& in) {
  const Shape& x = *in[0];
  need_rank4(n, x);
  return {x[0], x[1], 1, 1};
}

Shape flatten_shape(const Node& n, const std::vector<const Shape*>& in) {
  const Shape& x = *in[0];
  RESNET_CHECK(!x.empty(), describe(n) << ": expected an input with a batch dimension");
  int64_t rest = 1;
  for (size_t i = 1; i < x.size(); ++i)
    rest = known(x[i]) && known(rest) ? rest * x[i] : kUnknownDim;
  return {x[0], rest};
}

Shape linear_shape(const Node& n, const std::vector<const Shape*>& in) {
  const Shape& x = *in[0];
  const Shape& ws = n.params[0].value.shape();
  RESNET_CHECK(x.size() == 2 && (!known(x[1]) || x[1] == ws[1]),
               describe(n) << ": weight '" << n.params[0].name << "' " << shape_str(ws)
                           << " expects input [N, " << ws[1] << "], found " << shape_str(x));
  return {x[0], ws[0]};
}

Shape subsample_shape(const Node& n, const std::vector<const Shape*>& in) {
  const Shape& x = *in[0];
  const Window& w = n.window;
  need_rank4(n, x);
  RESNET_CHECK(w.stride_h >= 1 && w.stride_w >= 1, describe(n) << ": strides must be positive");
  Shape y = x;
  if (known(x[2])) y[2] = (x[2] + w.stride_h - 1) / w.stride_h;
  if (known(x[3])) y[3] = (x[3] + w.stride_w - 1) / w.stride_w;
  return y;
}

Shape pad_channels_shape(const Node& n, const std::vector<const Shape*>& in) {
  const Shape& x = *in[0];
  need_rank4(n, x);
  Shape y = x;
  if (known(x[1])) y[1] = x[1] + n.pads[0] + n.pads[1];
  return y;
}

// --- tensor ops on any rank ---------------------------------------------------------

void check_constant(const Node& n) {
  const Tensor& c = n.params[0].value;
  RESNET_CHECK(c.defined() && c.dtype() == DType::f32 && c.rank() <= static_cast<int>(kMaxRank),
               describe(n) << ": expected an f32 constant '" << n.params[0].name << "' of at most "
                           << kMaxRank << " dimensions");
}

void check_clip(const Node& n) {
  RESNET_CHECK(!(n.clip_min > n.clip_max) && !std::isnan(n.clip_min) && !std::isnan(n.clip_max),
               describe(n) << ": expected bounds min <= max, found [" << n.clip_min << ", "
                           << n.clip_max << "]");
}

void check_matmul(const Node& n) {
  const Tensor& b = n.params[0].value;
  RESNET_CHECK(b.defined() && b.dtype() == DType::f32 && b.rank() >= 2 &&
                   b.rank() <= static_cast<int>(kMaxRank),
               describe(n) << ": expected an f32 matrix '" << n.params[0].name << "' of 2 to "
                           << kMaxRank << " dimensions");
}

Shape binary_shape(const Node& n, const std::vector<const Shape*>& in) {
  return broadcast_shapes(n, *in[0], n.params[0].value.shape());
}

Shape softmax_shape(const Node& n, const std::vector<const Shape*>& in) {
  normalized_axis(n, n.axis, in[0]->size());
  return *in[0];
}

Shape reduce_mean_shape(const Node& n, const std::vector<const Shape*>& in) {
  const Shape& x = *in[0];
  const std::vector<bool> reduced = reduced_axes(n, x.size());
  Shape y;
  for (size_t i = 0; i < x.size(); ++i)
    if (!reduced[i])
      y.push_back(x[i]);
    else if (n.keepdims)
      y.push_back(1);
  return y;
}

// The product of x[from, to), unknown if any factor is.
// Refused past 2^40 elements: a file's sizes may lie, and no tensor here is that large.
int64_t product(const Node& n, const Shape& x, size_t from, size_t to) {
  constexpr int64_t kMaxElements = int64_t{1} << 40;
  int64_t p = 1;
  for (size_t i = from; i < to && known(p); ++i) {
    if (!known(x[i])) return kUnknownDim;
    RESNET_CHECK(x[i] == 0 || p <= kMaxElements / x[i],
                 describe(n) << ": " << shape_str(x) << " has more than 2^40 elements");
    p *= x[i];
  }
  return p;
}

Shape reshape_to_target(const Node& n, const Shape& x) {
  RESNET_CHECK(!n.axes.empty() && n.axes.size() <= kMaxRank,
               describe(n) << ": expected a target shape of 1 to " << kMaxRank
                           << " dimensions, found " << n.axes.size());
  Shape y;
  int infer_at = -1;
  for (size_t i = 0; i < n.axes.size(); ++i) {
    const int64_t d = n.axes[i];
    if (d == -1) {
      RESNET_CHECK(infer_at < 0, describe(n) << ": expected at most one -1 in the target shape "
                                             << shape_str(n.axes));
      infer_at = static_cast<int>(i);
      y.push_back(kUnknownDim);
    } else if (d == 0 && !n.allowzero) {
      RESNET_CHECK(i < x.size(), describe(n) << ": the target " << shape_str(n.axes)
                                             << " copies axis " << i << " of " << shape_str(x));
      y.push_back(x[i]);
    } else {
      RESNET_CHECK(d >= 0, describe(n) << ": expected sizes >= -1 in the target shape, found "
                                       << shape_str(n.axes));
      y.push_back(d);
    }
  }
  const int64_t total = product(n, x, 0, x.size());
  const int64_t rest = product(n, y, 0, y.size());  // unknown while -1 is in it
  if (infer_at >= 0) {
    Shape rest_of_y = y;
    rest_of_y[static_cast<size_t>(infer_at)] = 1;
    const int64_t others = product(n, rest_of_y, 0, y.size());
    if (known(total) && known(others)) {
      RESNET_CHECK(others > 0 && total % others == 0, describe(n)
                                                          << ": cannot reshape " << shape_str(x)
                                                          << " to " << shape_str(n.axes));
      y[static_cast<size_t>(infer_at)] = total / others;
    }
  } else if (known(total) && known(rest)) {
    RESNET_CHECK(total == rest, describe(n) << ": cannot reshape " << shape_str(x) << " (" << total
                                            << " values) to " << shape_str(y));
  }
  return y;
}

Shape reshape_shape(const Node& n, const std::vector<const Shape*>& in) {
  const Shape& x = *in[0];
  switch (n.shape_rule) {
    case ShapeRule::reshape:
      return reshape_to_target(n, x);
    case ShapeRule::flatten: {
      RESNET_CHECK(n.axes.size() == 1, describe(n) << ": expected one flatten axis");
      int64_t axis = n.axes[0];
      const auto r = static_cast<int64_t>(x.size());
      RESNET_CHECK(axis >= -r && axis <= r, describe(n) << ": expected a flatten axis in [" << -r
                                                        << ", " << r << "], found " << axis);
      if (axis < 0) axis += r;
      const auto a = static_cast<size_t>(axis);
      return {product(n, x, 0, a), product(n, x, a, x.size())};
    }
    case ShapeRule::squeeze: {
      std::vector<bool> drop(x.size(), n.axes.empty());
      if (n.axes.empty())
        for (size_t i = 0; i < x.size(); ++i) drop[i] = x[i] == 1;
      for (int64_t a : n.axes) {
        const size_t i = normalized_axis(n, a, x.size());
        RESNET_CHECK(!known(x[i]) || x[i] == 1,
                     describe(n) << ": expected size 1 at axis " << a << " of " << shape_str(x));
        drop[i] = true;
      }
      Shape y;
      for (size_t i = 0; i < x.size(); ++i)
        if (!drop[i]) y.push_back(x[i]);
      return y;
    }
    case ShapeRule::unsqueeze: {
      const size_t rank = x.size() + n.axes.size();
      RESNET_CHECK(rank <= kMaxRank, describe(n) << ": the output would have " << rank
                                                 << " dimensions, more than " << kMaxRank);
      std::vector<bool> inserted(rank, false);
      for (int64_t a : n.axes) {
        const size_t i = normalized_axis(n, a, rank);
        RESNET_CHECK(!inserted[i], describe(n) << ": axis " << a << " is given twice");
        inserted[i] = true;
      }
      Shape y;
      size_t next = 0;
      for (size_t i = 0; i < rank; ++i) y.push_back(inserted[i] ? 1 : x[next++]);
      return y;
    }
  }
  return x;
}

Shape transpose_shape(const Node& n, const std::vector<const Shape*>& in) {
  const Shape& x = *in[0];
  const std::vector<size_t> perm = permutation(n, x.size());
  Shape y;
  for (size_t p : perm) y.push_back(x[p]);
  return y;
}

Shape matmul_shape(const Node& n, const std::vector<const Shape*>& in) {
  const Shape& a = *in[0];
  const Shape& b = n.params[0].value.shape();
  RESNET_CHECK(!a.empty(), describe(n) << ": expected an input of at least one dimension");
  const Shape a2 = a.size() == 1 ? Shape{1, a[0]} : a;
  const int64_t k = a2.back();
  RESNET_CHECK(!known(k) || k == b[b.size() - 2],
               describe(n) << ": cannot multiply " << shape_str(a) << " by '" << n.params[0].name
                           << "' " << shape_str(b));
  const Shape batch_a(a2.begin(), a2.end() - 2), batch_b(b.begin(), b.end() - 2);
  Shape y = broadcast_shapes(n, batch_a, batch_b);
  if (a.size() > 1) y.push_back(a2[a2.size() - 2]);
  y.push_back(b.back());
  return y;
}

// clang-format off
constexpr std::array<OpInfo, kOpCount> kOps = {{
  // op                       ONNX name             inputs  params  check               shape
  {OpKind::conv,            "Conv",               1,      1, 2,   check_conv,         conv_shape},
  {OpKind::batch_norm,      "BatchNormalization", 1,      4, 4,   check_batch_norm,   batch_norm_shape},
  {OpKind::relu,            "Relu",               1,      0, 0,   nullptr,            same_shape},
  {OpKind::add,             "Add",                2,      0, 0,   nullptr,            add_shape},
  {OpKind::max_pool,        "MaxPool",            1,      0, 0,   nullptr,            pool_shape},
  {OpKind::avg_pool,        "AveragePool",        1,      0, 0,   nullptr,            pool_shape},
  {OpKind::global_avg_pool, "GlobalAveragePool",  1,      0, 0,   nullptr,            global_pool_shape},
  {OpKind::flatten,         "Flatten",            1,      0, 0,   nullptr,            flatten_shape},
  {OpKind::linear,          "Gemm",               1,      1, 2,   check_linear,       linear_shape},
  {OpKind::subsample,       "Slice",              1,      0, 0,   nullptr,            subsample_shape},
  {OpKind::pad_channels,    "Pad",                1,      0, 0,   check_pad_channels, pad_channels_shape},
  {OpKind::softmax,         "Softmax",            1,      0, 0,   nullptr,            softmax_shape},
  {OpKind::add_constant,    "Add",                1,      1, 1,   check_constant,     binary_shape},
  {OpKind::sub_constant,    "Sub",                1,      1, 1,   check_constant,     binary_shape},
  {OpKind::mul_constant,    "Mul",                1,      1, 1,   check_constant,     binary_shape},
  {OpKind::div_constant,    "Div",                1,      1, 1,   check_constant,     binary_shape},
  {OpKind::clip,            "Clip",               1,      0, 0,   check_clip,         same_shape},
  {OpKind::reduce_mean,     "ReduceMean",         1,      0, 0,   nullptr,            reduce_mean_shape},
  {OpKind::reshape,         "Reshape",            1,      0, 0,   nullptr,            reshape_shape},
  {OpKind::transpose,       "Transpose",          1,      0, 0,   nullptr,            transpose_shape},
  {OpKind::matmul,          "MatMul",             1,      1, 1,   check_matmul,       matmul_shape},
  {OpKind::dropout,         "Dropout",            1,      0, 0,   nullptr,            same_shape},
}};
// clang-format on
static_assert(covers_every_op(kOps), "the op table needs one entry per OpKind, in enum order");

}  // namespace

size_t normalized_axis(const Node& n, int64_t axis, size_t rank) {
  const auto r = static_cast<int64_t>(rank);
  RESNET_CHECK(axis >= -r && axis < r, describe(n) << ": expected an axis in [" << -r << ", "
                                                   << r - 1 << "], found " << axis);
  return static_cast<size_t>(axis < 0 ? axis + r : axis);
}

std::vector<bool> reduced_axes(const Node& n, size_t rank) {
  std::vector<bool> reduced(rank, n.axes.empty());
  for (int64_t a : n.axes) {
    const size_t i = normalized_axis(n, a, rank);
    RESNET_CHECK(!reduced[i], describe(n) << ": axis " << a << " is given twice");
    reduced[i] = true;
  }
  return reduced;
}

std::vector<size_t> permutation(const Node& n, size_t rank) {
  std::vector<size_t> perm;
  if (n.axes.empty())
    for (size_t i = rank; i-- > 0;) perm.push_back(i);  // ONNX's default: reverse
  std::vector<bool> seen(rank, false);
  RESNET_CHECK(n.axes.empty() || n.axes.size() == rank,
               describe(n) << ": expected a permutation of " << rank << " axes, found "
                           << shape_str(n.axes));
  for (int64_t a : n.axes) {
    const size_t i = normalized_axis(n, a, rank);
    RESNET_CHECK(!seen[i], describe(n) << ": expected a permutation, found " << shape_str(n.axes));
    seen[i] = true;
    perm.push_back(i);
  }
  return perm;
}

Shape broadcast_shapes(const Node& n, const Shape& a, const Shape& b) {
  const size_t rank = std::max(a.size(), b.size());
  Shape y(rank);
  for (size_t i = 0; i < rank; ++i) {
    // Aligned from the last axis; a missing axis has size 1.
    const int64_t da = i + a.size() >= rank ? a[i + a.size() - rank] : 1;
    const int64_t db = i + b.size() >= rank ? b[i + b.size() - rank] : 1;
    RESNET_CHECK(!known(da) || !known(db) || da == db || da == 1 || db == 1,
                 describe(n) << ": cannot broadcast " << shape_str(a) << " with " << shape_str(b));
    y[i] = da == 1 ? db : db == 1 ? da : known(da) ? da : db;
  }
  return y;
}

std::vector<ExtraOutput> extra_outputs_of(const Node& n, const Shape& x, const Shape& y) {
  switch (n.op) {
    case OpKind::max_pool:
      return {{"Indices", ElementType::i64, y}};
    case OpKind::dropout:
      return {{"mask", ElementType::boolean, x}};
    case OpKind::batch_norm: {
      if (!n.training) return {};
      // Shapes are asked for only after validate(), which checked the parameters.
      const Shape c = x.empty() ? Shape{} : Shape{n.params[0].value.dim(0)};
      return {{"running_mean", ElementType::f32, c}, {"running_var", ElementType::f32, c}};
    }
    default:
      return {};
  }
}

const OpInfo& op_info(OpKind op) {
  const auto i = static_cast<size_t>(op);
  RESNET_CHECK(i < kOpCount, "op_info: " << i << " is not an OpKind");
  return kOps[i];
}

const char* op_name(OpKind op) {
  const auto i = static_cast<size_t>(op);
  return i < kOpCount ? kOps[i].onnx_name : "?";
}

}  // namespace resnet::infer
