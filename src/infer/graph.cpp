#include "resnet/infer/graph.h"

#include <sstream>

#include "resnet/core/error.h"

namespace resnet::infer {

const char* op_name(OpKind op) {
  switch (op) {
    case OpKind::conv:
      return "Conv";
    case OpKind::batch_norm:
      return "BatchNormalization";
    case OpKind::relu:
      return "Relu";
    case OpKind::add:
      return "Add";
    case OpKind::max_pool:
      return "MaxPool";
    case OpKind::avg_pool:
      return "AveragePool";
    case OpKind::global_avg_pool:
      return "GlobalAveragePool";
    case OpKind::flatten:
      return "Flatten";
    case OpKind::linear:
      return "Gemm";
    case OpKind::subsample:
      return "Slice";
    case OpKind::pad_channels:
      return "Pad";
  }
  return "?";
}

int64_t window_out_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad_before,
                        int64_t pad_after, int64_t dilation, bool ceil_mode) {
  const int64_t span = dilation * (kernel - 1) + 1;
  const int64_t room = in + pad_before + pad_after - span;
  if (room < 0) return 0;
  int64_t out = (ceil_mode ? (room + stride - 1) / stride : room / stride) + 1;
  // PyTorch and ONNX: with ceil_mode, the last window must start inside the input or the
  // left padding.
  if (ceil_mode && (out - 1) * stride >= in + pad_before) --out;
  return out;
}

int Graph::add_value(std::string name) {
  values.push_back(Value{std::move(name), {}});
  return static_cast<int>(values.size()) - 1;
}

int Graph::add_node(Node node, std::string output_name) {
  node.output = add_value(output_name.empty() ? node.name : std::move(output_name));
  nodes.push_back(std::move(node));
  return nodes.back().output;
}

namespace {

std::string where(const Node& n) {
  return std::string("node '") + n.name + "' (" + op_name(n.op) + ")";
}

size_t expected_inputs(OpKind op) {
  return op == OpKind::add ? 2 : 1;
}

// Allowed parameter counts: {min, max}.
std::pair<size_t, size_t> expected_params(OpKind op) {
  switch (op) {
    case OpKind::conv:
    case OpKind::linear:
      return {1, 2};
    case OpKind::batch_norm:
      return {4, 4};
    default:
      return {0, 0};
  }
}

void check_param_shapes(const Node& n) {
  auto rank_is = [&](size_t i, int rank) {
    const Tensor& t = n.params[i].value;
    RESNET_CHECK(t.defined() && t.rank() == rank && t.dtype() == DType::f32,
                 where(n) << ": parameter '" << n.params[i].name << "' expected a " << rank
                          << "-D f32 tensor, found "
                          << (t.defined() ? t.shape_str() + " " + dtype_name(t.dtype())
                                          : std::string("nothing")));
  };
  switch (n.op) {
    case OpKind::conv: {
      rank_is(0, 4);
      const int64_t oc = n.params[0].value.dim(0);
      RESNET_CHECK(n.window.groups >= 1 && oc % n.window.groups == 0,
                   where(n) << ": " << oc << " output channels do not split into "
                            << n.window.groups << " groups");
      if (n.params.size() == 2) {
        rank_is(1, 1);
        RESNET_CHECK(n.params[1].value.dim(0) == oc, where(n) << ": bias '" << n.params[1].name
                                                              << "' expected [" << oc << "], found "
                                                              << n.params[1].value.shape_str());
      }
      break;
    }
    case OpKind::batch_norm: {
      for (size_t i = 0; i < 4; ++i) rank_is(i, 1);
      const int64_t c = n.params[0].value.dim(0);
      for (size_t i = 1; i < 4; ++i)
        RESNET_CHECK(n.params[i].value.dim(0) == c, where(n) << ": parameter '" << n.params[i].name
                                                             << "' expected [" << c << "], found "
                                                             << n.params[i].value.shape_str());
      break;
    }
    case OpKind::linear: {
      rank_is(0, 2);
      if (n.params.size() == 2) {
        rank_is(1, 1);
        RESNET_CHECK(n.params[1].value.dim(0) == n.params[0].value.dim(0),
                     where(n) << ": bias '" << n.params[1].name << "' expected ["
                              << n.params[0].value.dim(0) << "], found "
                              << n.params[1].value.shape_str());
      }
      break;
    }
    default:
      break;
  }
}

}  // namespace

void Graph::validate() const {
  RESNET_CHECK(num_inputs >= 1 && static_cast<size_t>(num_inputs) <= values.size(),
               "graph: expected at least one input value, found " << values.size() << " values");
  std::vector<bool> produced(values.size(), false);
  for (int i = 0; i < num_inputs; ++i) produced[i] = true;
  for (const Node& n : nodes) {
    RESNET_CHECK(n.inputs.size() == expected_inputs(n.op),
                 where(n) << ": expected " << expected_inputs(n.op) << " input(s), found "
                          << n.inputs.size());
    for (int in : n.inputs) {
      RESNET_CHECK(in >= 0 && static_cast<size_t>(in) < values.size(),
                   where(n) << ": input id " << in << " is not a value of the graph");
      RESNET_CHECK(produced[in],
                   where(n) << ": reads '" << values[in].name << "' before any node produces it");
    }
    RESNET_CHECK(n.output >= 0 && static_cast<size_t>(n.output) < values.size(),
                 where(n) << ": output id " << n.output << " is not a value of the graph");
    RESNET_CHECK(!produced[n.output],
                 where(n) << ": writes '" << values[n.output].name << "', already produced");
    produced[n.output] = true;
    auto [lo, hi] = expected_params(n.op);
    RESNET_CHECK(n.params.size() >= lo && n.params.size() <= hi,
                 where(n) << ": expected " << lo << (hi != lo ? " to " + std::to_string(hi) : "")
                          << " parameter(s), found " << n.params.size());
    check_param_shapes(n);
    if (n.op == OpKind::pad_channels)
      RESNET_CHECK(n.pads.size() == 2 && n.pads[0] >= 0 && n.pads[1] >= 0,
                   where(n) << ": expected two non-negative channel pads");
  }
  RESNET_CHECK(output >= 0 && static_cast<size_t>(output) < values.size() && produced[output],
               "graph: the output is not produced by any node");
}

void Graph::infer_shapes(const Shape& input_shape) {
  validate();
  RESNET_CHECK(input_shape.size() == 4,
               "graph: expected an input of shape [N, C, H, W], found " << shape_str(input_shape));
  for (int64_t d : input_shape)
    RESNET_CHECK(d >= 0 || d == kUnknownDim,
                 "graph: expected an input shape of sizes, found " << shape_str(input_shape));
  for (auto& v : values) v.shape.clear();
  values[0].shape = input_shape;
  auto known = [](int64_t d) { return d != kUnknownDim; };
  for (const Node& n : nodes) {
    const Shape& x = values[n.inputs[0]].shape;
    const Window& w = n.window;
    Shape y;
    auto need_rank4 = [&] {
      RESNET_CHECK(x.size() == 4, where(n) << ": expected a 4-D input, found " << shape_str(x));
    };
    auto spatial = [&](int64_t c) {
      need_rank4();
      int64_t oh = kUnknownDim, ow = kUnknownDim;
      if (known(x[2]))
        oh = window_out_size(x[2], w.kernel_h, w.stride_h, w.pad_t, w.pad_b, w.dilation_h,
                             w.ceil_mode);
      if (known(x[3]))
        ow = window_out_size(x[3], w.kernel_w, w.stride_w, w.pad_l, w.pad_r, w.dilation_w,
                             w.ceil_mode);
      RESNET_CHECK((oh > 0 || oh == kUnknownDim) && (ow > 0 || ow == kUnknownDim),
                   where(n) << ": a " << w.kernel_h << "x" << w.kernel_w
                            << " window does not fit the input " << shape_str(x));
      return Shape{x[0], c, oh, ow};
    };
    switch (n.op) {
      case OpKind::conv: {
        const Shape& ws = n.params[0].value.shape();
        need_rank4();
        RESNET_CHECK(!known(x[1]) || x[1] == ws[1] * w.groups,
                     where(n) << ": weight '" << n.params[0].name << "' " << shape_str(ws)
                              << " with " << w.groups << " group(s) expects " << ws[1] * w.groups
                              << " input channels, found " << shape_str(x));
        RESNET_CHECK(ws[2] == w.kernel_h && ws[3] == w.kernel_w,
                     where(n) << ": weight " << shape_str(ws) << " does not match kernel "
                              << w.kernel_h << "x" << w.kernel_w);
        y = spatial(ws[0]);
        break;
      }
      case OpKind::batch_norm:
        RESNET_CHECK(x.size() >= 2 && (!known(x[1]) || x[1] == n.params[0].value.dim(0)),
                     where(n) << ": expected " << n.params[0].value.dim(0) << " channels, found "
                              << shape_str(x));
        y = x;
        break;
      case OpKind::relu:
        y = x;
        break;
      case OpKind::add: {
        // One shape: a size one side does not know, the other may.
        const Shape& b = values[n.inputs[1]].shape;
        bool same = x.size() == b.size();
        y = x;
        for (size_t i = 0; same && i < x.size(); ++i) {
          same = !known(x[i]) || !known(b[i]) || x[i] == b[i];
          if (!known(y[i])) y[i] = b[i];
        }
        RESNET_CHECK(same, where(n) << ": expected two inputs of one shape, found " << shape_str(x)
                                    << " and " << shape_str(b));
        break;
      }
      case OpKind::max_pool:
      case OpKind::avg_pool:
        y = spatial(x[1]);
        break;
      case OpKind::global_avg_pool:
        need_rank4();
        y = {x[0], x[1], 1, 1};
        break;
      case OpKind::flatten: {
        RESNET_CHECK(!x.empty(), where(n) << ": expected an input with a batch dimension");
        int64_t rest = 1;
        for (size_t i = 1; i < x.size(); ++i)
          rest = known(x[i]) && known(rest) ? rest * x[i] : kUnknownDim;
        y = {x[0], rest};
        break;
      }
      case OpKind::linear: {
        const Shape& ws = n.params[0].value.shape();
        RESNET_CHECK(x.size() == 2 && (!known(x[1]) || x[1] == ws[1]),
                     where(n) << ": weight '" << n.params[0].name << "' " << shape_str(ws)
                              << " expects input [N, " << ws[1] << "], found " << shape_str(x));
        y = {x[0], ws[0]};
        break;
      }
      case OpKind::subsample:
        need_rank4();
        RESNET_CHECK(w.stride_h >= 1 && w.stride_w >= 1, where(n) << ": strides must be positive");
        y = x;
        if (known(x[2])) y[2] = (x[2] + w.stride_h - 1) / w.stride_h;
        if (known(x[3])) y[3] = (x[3] + w.stride_w - 1) / w.stride_w;
        break;
      case OpKind::pad_channels:
        need_rank4();
        y = x;
        if (known(x[1])) y[1] = x[1] + n.pads[0] + n.pads[1];
        break;
    }
    values[n.output].shape = y;
  }
}

int64_t count_macs(const Graph& graph) {
  int64_t macs = 0;
  for (const Node& n : graph.nodes) {
    if (n.op != OpKind::conv && n.op != OpKind::linear) continue;
    const Shape& y = graph.values[n.output].shape;
    RESNET_CHECK(!y.empty(), "count_macs: shapes are not inferred");
    const Tensor& w = n.params[0].value;
    macs += shape_numel(y) * (w.numel() / w.dim(0));
  }
  return macs;
}

std::vector<const Param*> Graph::all_params() const {
  std::vector<const Param*> out;
  for (const Node& n : nodes)
    for (const Param& p : n.params) out.push_back(&p);
  return out;
}

}  // namespace resnet::infer
