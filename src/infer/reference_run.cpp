// The reference interpreter: each node runs through the naive kernels of src/ref where
// they cover the op, and through the small loops below where they do not (general
// windows for the pools, asymmetric conv padding, subsample, channel padding). Shapes
// come from Graph::infer_shapes first, so that a malformed graph or an input that does
// not fit fails with infer_shapes' message naming the node, and every op's result is
// checked against the shape inferred for it (an oracle must not drift from the spec).
#include "resnet/infer/reference_run.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "resnet/core/error.h"
#include "resnet/infer/op_table.h"
#include "resnet/ref/kernels.h"

namespace resnet::infer {

namespace {

std::string where(const Node& n) {
  return std::string("run_reference: node '") + n.name + "' (" + op_name(n.op) + ")";
}

// x with zero rows and columns added around each image: {top, left, bottom, right}.
Tensor zero_pad_hw(const Tensor& x, int64_t top, int64_t left, int64_t bottom, int64_t right) {
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  const int64_t PH = H + top + bottom, PW = W + left + right;
  Tensor y({N, C, PH, PW});
  const float* src = x.f32();
  float* dst = y.f32();
  for (int64_t nc = 0; nc < N * C; ++nc)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t w = 0; w < W; ++w)
        dst[(nc * PH + h + top) * PW + w + left] = src[(nc * H + h) * W + w];
  return y;
}

Tensor conv(const Node& n, const Tensor& x) {
  const Window& w = n.window;
  ref::Conv2dParams p;
  p.stride_h = w.stride_h, p.stride_w = w.stride_w;
  p.dilation_h = w.dilation_h, p.dilation_w = w.dilation_w;
  p.groups = w.groups;
  const Tensor bias = n.params.size() > 1 ? n.params[1].value : Tensor();
  if (w.pad_t == w.pad_b && w.pad_l == w.pad_r) {
    p.pad_h = w.pad_t, p.pad_w = w.pad_l;
    return ref::conv2d_forward(x, n.params[0].value, bias, p);
  }
  // The reference kernel pads symmetrically; ONNX (SAME_UPPER, explicit pads) need not.
  return ref::conv2d_forward(zero_pad_hw(x, w.pad_t, w.pad_l, w.pad_b, w.pad_r), n.params[0].value,
                             bias, p);
}

// One spatial axis of a pool: input size, output size and the window along it.
struct PoolAxis {
  int64_t in, out, kernel, stride, pad_before, pad_after, dilation;
};

// The axes of a pool of [N, C, H, W] or [N, C, D, H, W]; a 4-D pool has a depth axis of
// size 1 with a window of 1.
std::array<PoolAxis, 3> pool_axes(const Window& w, const Shape& x, const Shape& y) {
  const bool has_d = x.size() == 5;
  const size_t h = has_d ? 3 : 2;
  return {{{has_d ? x[2] : 1, has_d ? y[2] : 1, w.kernel_d, w.stride_d, w.pad_front, w.pad_back,
            w.dilation_d},
           {x[h], y[h], w.kernel_h, w.stride_h, w.pad_t, w.pad_b, w.dilation_h},
           {x[h + 1], y[h + 1], w.kernel_w, w.stride_w, w.pad_l, w.pad_r, w.dilation_w}}};
}

// Max or average pooling over a general window, PyTorch's and ONNX's semantics: max
// ignores padding; average divides by the window clipped to the padded input
// (count_include_pad) or to the real input (not), so a ceil_mode window that runs past
// the padding never counts what lies beyond it. With `indices` (max only), each output's
// MaxPool Indices: the flat position of the first maximum in x, counting each [D, H, W]
// plane row-major (storage_order 0) or column-major (1).
Tensor pool(const Node& n, const Tensor& x, const Shape& out_shape, Tensor* indices = nullptr) {
  const bool is_max = n.op == OpKind::max_pool;
  const std::array<PoolAxis, 3> ax = pool_axes(n.window, x.shape(), out_shape);
  const int64_t planes = x.dim(0) * x.dim(1);
  const int64_t plane_in = ax[0].in * ax[1].in * ax[2].in;
  // Steps of the index along d, h, w within a plane.
  const std::array<int64_t, 3> index_step =
      n.indices_column_major ? std::array<int64_t, 3>{1, ax[0].in, ax[0].in * ax[1].in}
                             : std::array<int64_t, 3>{ax[1].in * ax[2].in, ax[2].in, 1};
  Tensor y(out_shape);
  if (indices) *indices = Tensor(out_shape, DType::i64);
  const float* src = x.f32();
  float* dst = y.f32();
  int64_t out_pos = 0;
  for (int64_t nc = 0; nc < planes; ++nc) {
    const float* plane = src + nc * plane_in;
    for (int64_t od = 0; od < ax[0].out; ++od)
      for (int64_t oh = 0; oh < ax[1].out; ++oh)
        for (int64_t ow = 0; ow < ax[2].out; ++ow, ++out_pos) {
          const std::array<int64_t, 3> o = {od, oh, ow};
          std::array<int64_t, 3> first{};
          for (size_t a = 0; a < 3; ++a) first[a] = o[a] * ax[a].stride - ax[a].pad_before;
          double sum = 0;
          float best = -std::numeric_limits<float>::infinity();
          int64_t best_at = -1, count = 0;
          for (int64_t kd = 0; kd < ax[0].kernel; ++kd) {
            const int64_t id = first[0] + kd * ax[0].dilation;
            if (id < 0 || id >= ax[0].in) continue;
            for (int64_t kh = 0; kh < ax[1].kernel; ++kh) {
              const int64_t ih = first[1] + kh * ax[1].dilation;
              if (ih < 0 || ih >= ax[1].in) continue;
              for (int64_t kw = 0; kw < ax[2].kernel; ++kw) {
                const int64_t iw = first[2] + kw * ax[2].dilation;
                if (iw < 0 || iw >= ax[2].in) continue;
                const float v = plane[(id * ax[1].in + ih) * ax[2].in + iw];
                if (count == 0 || v > best || (std::isnan(v) && !std::isnan(best))) {
                  best = v;
                  best_at = id * index_step[0] + ih * index_step[1] + iw * index_step[2];
                }
                sum += v;
                ++count;
              }
            }
          }
          RESNET_CHECK(count > 0, where(n)
                                      << ": output " << out_pos << " of " << shape_str(out_shape)
                                      << " has a window that lies entirely in the padding");
          float out = best;
          if (!is_max) {
            int64_t divisor = count;
            if (n.window.count_include_pad) {
              divisor = 1;
              for (size_t a = 0; a < 3; ++a)
                divisor *= std::min(first[a] + ax[a].kernel, ax[a].in + ax[a].pad_after) - first[a];
            }
            out = static_cast<float>(sum / static_cast<double>(divisor));
          }
          dst[out_pos] = out;
          if (indices) indices->i64()[out_pos] = nc * plane_in + best_at;
        }
  }
  return y;
}

// Training BatchNormalization over [N, C, ...]: each channel normalised with the batch's
// mean and biased variance (sums in double); `stats` receives the running mean and
// variance, input * momentum + batch * (1 - momentum), as ONNX defines them.
Tensor batch_norm_training(const Node& n, const Tensor& x, std::vector<Tensor>& stats) {
  const int64_t N = x.dim(0), C = x.dim(1), inner = x.numel() / std::max<int64_t>(N * C, 1);
  RESNET_CHECK(N * inner > 0, where(n) << ": training mode needs at least one value per channel, "
                                       << "found input " << x.shape_str());
  const float* gamma = n.params[0].value.f32();
  const float* beta = n.params[1].value.f32();
  const float* mean_in = n.params[2].value.f32();
  const float* var_in = n.params[3].value.f32();
  Tensor y(x.shape()), running_mean({C}), running_var({C});
  for (int64_t c = 0; c < C; ++c) {
    double sum = 0, sq = 0;
    for (int64_t b = 0; b < N; ++b)
      for (int64_t i = 0; i < inner; ++i) sum += x.f32()[(b * C + c) * inner + i];
    const double count = static_cast<double>(N * inner), mean = sum / count;
    for (int64_t b = 0; b < N; ++b)
      for (int64_t i = 0; i < inner; ++i) {
        const double d = x.f32()[(b * C + c) * inner + i] - mean;
        sq += d * d;
      }
    const double var = sq / count, k = gamma[c] / std::sqrt(var + n.eps);
    for (int64_t b = 0; b < N; ++b)
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t at = (b * C + c) * inner + i;
        y.f32()[at] = static_cast<float>((x.f32()[at] - mean) * k + beta[c]);
      }
    running_mean.f32()[c] = static_cast<float>(mean_in[c] * n.momentum + mean * (1 - n.momentum));
    running_var.f32()[c] = static_cast<float>(var_in[c] * n.momentum + var * (1 - n.momentum));
  }
  stats = {running_mean, running_var};
  return y;
}

// Every output of a node that writes more than one, or trains: {output, extras...}.
std::vector<Tensor> run_all_outputs(const Node& n, const std::vector<Tensor>& v,
                                    const Shape& out_shape) {
  const Tensor& x = v[n.inputs[0]];
  std::vector<Tensor> outs(1);
  switch (n.op) {
    case OpKind::max_pool: {
      Tensor indices;
      outs[0] = pool(n, x, out_shape, &indices);
      outs.push_back(indices);
      break;
    }
    case OpKind::batch_norm: {
      std::vector<Tensor> stats;
      outs[0] = batch_norm_training(n, x, stats);
      outs.insert(outs.end(), stats.begin(), stats.end());
      break;
    }
    case OpKind::dropout: {
      outs[0] = x.clone();
      Tensor mask(x.shape(), DType::u8);
      std::fill_n(static_cast<uint8_t*>(mask.raw()), mask.numel(), uint8_t{1});
      outs.push_back(mask);
      break;
    }
    default:
      RESNET_FAIL(where(n) << ": writes only one output");
  }
  outs.resize(1 + n.extra_outputs.size());
  return outs;
}

// subsample and pad_channels are the option-A shortcut that the training layer and
// compiled models run through backend::subsample_pad_channels. These two naive loops are
// deliberately independent of it: this interpreter is the oracle those are tested
// against, and the output sizes come from infer_shapes, not from the kernel's arithmetic.
Tensor subsample(const Node& n, const Tensor& x, const Shape& out_shape) {
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  const int64_t OH = out_shape[2], OW = out_shape[3];
  Tensor y(out_shape);
  const float* src = x.f32();
  float* dst = y.f32();
  for (int64_t nc = 0; nc < N * C; ++nc)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow)
        dst[(nc * OH + oh) * OW + ow] =
            src[(nc * H + oh * n.window.stride_h) * W + ow * n.window.stride_w];
  return y;
}

Tensor pad_channels(const Node& n, const Tensor& x, const Shape& out_shape) {
  const int64_t N = x.dim(0), C = x.dim(1), HW = x.dim(2) * x.dim(3);
  const int64_t OC = out_shape[1];
  Tensor y(out_shape);  // zero-filled: the padded channels stay 0
  const float* src = x.f32();
  float* dst = y.f32();
  for (int64_t b = 0; b < N; ++b)
    for (int64_t c = 0; c < C; ++c)
      std::copy_n(src + (b * C + c) * HW, HW, dst + (b * OC + c + n.pads[0]) * HW);
  return y;
}

// One kernel per OpKind, in enum order: the compiler refuses a table that misses an op.
using Kernel = Tensor (*)(const Node& n, const std::vector<Tensor>& values, const Shape& out_shape);
struct OpKernel {
  OpKind op;
  Kernel run;
};

Tensor run_conv(const Node& n, const std::vector<Tensor>& v, const Shape&) {
  return conv(n, v[n.inputs[0]]);
}
Tensor run_batch_norm(const Node& n, const std::vector<Tensor>& v, const Shape&) {
  return ref::batchnorm2d_forward_eval(v[n.inputs[0]], n.params[0].value, n.params[1].value,
                                       n.params[2].value, n.params[3].value, n.eps);
}
Tensor run_relu(const Node& n, const std::vector<Tensor>& v, const Shape&) {
  return ref::relu_forward(v[n.inputs[0]]);
}
Tensor run_add(const Node& n, const std::vector<Tensor>& v, const Shape&) {
  return ref::add(v[n.inputs[0]], v[n.inputs[1]]);
}
Tensor run_pool(const Node& n, const std::vector<Tensor>& v, const Shape& out_shape) {
  return pool(n, v[n.inputs[0]], out_shape);
}
Tensor run_global_avg_pool(const Node& n, const std::vector<Tensor>& v, const Shape&) {
  return ref::global_avgpool_forward(v[n.inputs[0]]);
}
Tensor run_flatten(const Node& n, const std::vector<Tensor>& v, const Shape& out_shape) {
  return v[n.inputs[0]].clone().reshape(out_shape);
}
Tensor run_linear(const Node& n, const std::vector<Tensor>& v, const Shape&) {
  return ref::linear_forward(v[n.inputs[0]], n.params[0].value,
                             n.params.size() > 1 ? n.params[1].value : Tensor());
}
Tensor run_subsample(const Node& n, const std::vector<Tensor>& v, const Shape& out_shape) {
  return subsample(n, v[n.inputs[0]], out_shape);
}
Tensor run_pad_channels(const Node& n, const std::vector<Tensor>& v, const Shape& out_shape) {
  return pad_channels(n, v[n.inputs[0]], out_shape);
}
// Along the axis (or over the rows of the 2-D view), in double with the maximum
// subtracted.
Tensor run_softmax(const Node& n, const std::vector<Tensor>& v, const Shape& out_shape) {
  const Tensor& x = v[n.inputs[0]];
  const size_t axis = normalized_axis(n, n.axis, out_shape.size());
  const Shape& d = out_shape;
  const int64_t outer = shape_numel(Shape(d.begin(), d.begin() + static_cast<int64_t>(axis)));
  const int64_t k = n.coerce_2d ? x.numel() / std::max<int64_t>(outer, 1) : d[axis];
  const int64_t inner = n.coerce_2d ? 1 : x.numel() / std::max<int64_t>(outer * k, 1);
  Tensor y(out_shape);
  std::vector<double> e(static_cast<size_t>(k));
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const float* in = x.f32() + o * k * inner + i;
      float* out = y.f32() + o * k * inner + i;
      double top = -std::numeric_limits<double>::infinity(), sum = 0.0;
      for (int64_t j = 0; j < k; ++j) top = std::max(top, static_cast<double>(in[j * inner]));
      for (int64_t j = 0; j < k; ++j) sum += e[j] = std::exp(in[j * inner] - top);
      for (int64_t j = 0; j < k; ++j) out[j * inner] = static_cast<float>(e[j] / sum);
    }
  return y;
}

// --- tensor ops: plain loops over row-major indices, sums in double -------------------

// Row-major strides of `s` seen from an output of shape `out` (NumPy broadcasting): 0
// where `s` has size 1 or lacks the axis.
std::vector<int64_t> broadcast_strides(const Shape& s, const Shape& out) {
  std::vector<int64_t> strides(out.size(), 0);
  int64_t step = 1;
  for (size_t k = 0; k < s.size(); ++k) {
    const size_t i = s.size() - 1 - k, o = out.size() - 1 - k;
    strides[o] = s[i] == 1 ? 0 : step;
    step *= s[i];
  }
  return strides;
}

// The offset `strides` give to the multi-index of row-major position `pos` in `out`.
int64_t offset_of(int64_t pos, const Shape& out, const std::vector<int64_t>& strides) {
  int64_t offset = 0;
  for (size_t k = out.size(); k-- > 0;) {
    offset += (pos % out[k]) * strides[k];
    pos /= out[k];
  }
  return offset;
}

Tensor run_binary(const Node& n, const std::vector<Tensor>& v, const Shape& out_shape) {
  const Tensor& x = v[n.inputs[0]];
  const Tensor& c = n.params[0].value;
  const std::vector<int64_t> xs = broadcast_strides(x.shape(), out_shape);
  const std::vector<int64_t> cs = broadcast_strides(c.shape(), out_shape);
  Tensor y(out_shape);
  for (int64_t i = 0; i < y.numel(); ++i) {
    double a = x.f32()[offset_of(i, out_shape, xs)], b = c.f32()[offset_of(i, out_shape, cs)];
    if (n.constant_first) std::swap(a, b);
    double r = 0;
    switch (n.op) {
      case OpKind::add_constant:
        r = a + b;
        break;
      case OpKind::sub_constant:
        r = a - b;
        break;
      case OpKind::mul_constant:
        r = a * b;
        break;
      default:
        r = a / b;
        break;
    }
    y.f32()[i] = static_cast<float>(r);
  }
  return y;
}

Tensor run_clip(const Node& n, const std::vector<Tensor>& v, const Shape&) {
  Tensor y = v[n.inputs[0]].clone();
  for (int64_t i = 0; i < y.numel(); ++i)
    y.f32()[i] = std::min(std::max(y.f32()[i], n.clip_min), n.clip_max);
  return y;
}

Tensor run_reduce_mean(const Node& n, const std::vector<Tensor>& v, const Shape& out_shape) {
  const Tensor& x = v[n.inputs[0]];
  const std::vector<bool> reduced = reduced_axes(n, static_cast<size_t>(x.rank()));
  // Each input element adds to the output element with its reduced indices at 0.
  Shape kept = x.shape();
  for (size_t i = 0; i < kept.size(); ++i)
    if (reduced[i]) kept[i] = 1;
  const std::vector<int64_t> strides = broadcast_strides(kept, x.shape());
  std::vector<double> sums(static_cast<size_t>(shape_numel(kept)), 0.0);
  for (int64_t i = 0; i < x.numel(); ++i)
    sums[static_cast<size_t>(offset_of(i, x.shape(), strides))] += x.f32()[i];
  const double count = static_cast<double>(x.numel()) / static_cast<double>(sums.size());
  Tensor y(out_shape);
  for (size_t i = 0; i < sums.size(); ++i) y.f32()[i] = static_cast<float>(sums[i] / count);
  return y;
}

Tensor run_reshape(const Node& n, const std::vector<Tensor>& v, const Shape& out_shape) {
  return v[n.inputs[0]].clone().reshape(out_shape);
}

Tensor run_transpose(const Node& n, const std::vector<Tensor>& v, const Shape& out_shape) {
  const Tensor& x = v[n.inputs[0]];
  const std::vector<size_t> perm = permutation(n, static_cast<size_t>(x.rank()));
  const std::vector<int64_t> in_strides = broadcast_strides(x.shape(), x.shape());
  std::vector<int64_t> strides(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) strides[i] = in_strides[perm[i]];
  Tensor y(out_shape);
  for (int64_t i = 0; i < y.numel(); ++i) y.f32()[i] = x.f32()[offset_of(i, out_shape, strides)];
  return y;
}

// A broadcast over the batch dimensions of matrix products, each in double.
Tensor run_matmul(const Node& n, const std::vector<Tensor>& v, const Shape& out_shape) {
  const Tensor& a = v[n.inputs[0]];
  const Tensor& b = n.params[0].value;
  const Shape as = a.rank() == 1 ? Shape{1, a.dim(0)} : a.shape();
  const int64_t M = as[as.size() - 2], K = as.back(), N = b.shape().back();
  Shape batch(out_shape.begin(), out_shape.end() - (a.rank() == 1 ? 1 : 2));
  const Shape a_batch(as.begin(), as.end() - 2), b_batch(b.shape().begin(), b.shape().end() - 2);
  const std::vector<int64_t> sa = broadcast_strides(a_batch, batch);
  const std::vector<int64_t> sb = broadcast_strides(b_batch, batch);
  Tensor y(out_shape);
  for (int64_t i = 0; i < shape_numel(batch); ++i) {
    const float* pa = a.f32() + offset_of(i, batch, sa) * M * K;
    const float* pb = b.f32() + offset_of(i, batch, sb) * K * N;
    float* py = y.f32() + i * M * N;
    for (int64_t r = 0; r < M; ++r)
      for (int64_t c = 0; c < N; ++c) {
        double sum = 0.0;
        for (int64_t k = 0; k < K; ++k) sum += static_cast<double>(pa[r * K + k]) * pb[k * N + c];
        py[r * N + c] = static_cast<float>(sum);
      }
  }
  return y;
}

constexpr std::array<OpKernel, kOpCount> kKernels = {{
    {OpKind::conv, run_conv},
    {OpKind::batch_norm, run_batch_norm},
    {OpKind::relu, run_relu},
    {OpKind::add, run_add},
    {OpKind::max_pool, run_pool},
    {OpKind::avg_pool, run_pool},
    {OpKind::global_avg_pool, run_global_avg_pool},
    {OpKind::flatten, run_flatten},
    {OpKind::linear, run_linear},
    {OpKind::subsample, run_subsample},
    {OpKind::pad_channels, run_pad_channels},
    {OpKind::softmax, run_softmax},
    {OpKind::add_constant, run_binary},
    {OpKind::sub_constant, run_binary},
    {OpKind::mul_constant, run_binary},
    {OpKind::div_constant, run_binary},
    {OpKind::clip, run_clip},
    {OpKind::reduce_mean, run_reduce_mean},
    {OpKind::reshape, run_reshape},
    {OpKind::transpose, run_transpose},
    {OpKind::matmul, run_matmul},
    {OpKind::dropout, run_reshape},  // y = x; the mask comes from run_all_outputs
}};
static_assert(covers_every_op(kKernels), "the reference interpreter needs a kernel per OpKind");

}  // namespace

std::vector<Tensor> run_reference_outputs(const Graph& g, const Tensor& x) {
  RESNET_CHECK(g.num_inputs == 1,
               "run_reference: expected a graph with one input, found " << g.num_inputs);
  RESNET_CHECK(
      x.defined() && x.dtype() == DType::f32 && x.is_plain(),
      "run_reference: expected a plain f32 input, found "
          << (x.defined() ? x.shape_str() + " " + dtype_name(x.dtype()) : std::string("nothing")));
  // A copy shares the parameters' storage; only its value shapes are new.
  Graph shaped = g;
  shaped.infer_shapes(x.shape());
  std::vector<Tensor> values(g.values.size());
  values[0] = x;
  for (const Node& n : g.nodes) {
    const Shape& out_shape = shaped.values[n.output].shape;
    std::vector<int> ids = {n.output};
    ids.insert(ids.end(), n.extra_outputs.begin(), n.extra_outputs.end());
    std::vector<Tensor> outs;
    if (ids.size() > 1 || n.training)
      outs = run_all_outputs(n, values, out_shape);
    else
      outs.push_back(kKernels[static_cast<size_t>(n.op)].run(n, values, out_shape));
    for (size_t i = 0; i < ids.size(); ++i) {
      const Value& want = shaped.values[ids[i]];
      RESNET_CHECK(outs[i].shape() == want.shape && outs[i].dtype() == storage_dtype(want.type),
                   where(n) << ": computed " << outs[i].shape_str() << " "
                            << dtype_name(outs[i].dtype()) << " for output " << i
                            << ", but shape inference says " << shape_str(want.shape) << " "
                            << element_type_name(want.type));
      values[ids[i]] = std::move(outs[i]);
    }
  }
  std::vector<Tensor> outputs;
  for (int v : g.outputs()) outputs.push_back(values[v]);
  return outputs;
}

Tensor run_reference(const Graph& g, const Tensor& x) {
  return run_reference_outputs(g, x)[0];
}

}  // namespace resnet::infer
