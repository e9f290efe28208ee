#include "resnet/infer/op_table.h"

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

Shape pool_shape(const Node& n, const std::vector<const Shape*>& in) {
  need_rank4(n, *in[0]);
  return windowed(n, *in[0], (*in[0])[1]);
}

Shape global_pool_shape(const Node& n, const std::vector<const Shape*>& in) {
  const Shape& x = *in[0];
  need_rank4(n, x);
  return {x[0], x[1], 1, 1};
}

Shape softmax_shape(const Node& n, const std::vector<const Shape*>& in) {
  const Shape& x = *in[0];
  RESNET_CHECK(x.size() == 2, describe(n)
                                  << ": expected a 2-D input [N, K], found " << shape_str(x));
  return x;
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
}};
// clang-format on
static_assert(covers_every_op(kOps), "the op table needs one entry per OpKind, in enum order");

}  // namespace

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
