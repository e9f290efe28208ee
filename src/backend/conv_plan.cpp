#include "conv_plan.h"

#include <cstdlib>
#include <optional>
#include <string>

namespace resnet::backend::detail {

namespace {

using fwd_pd_t = dnnl::convolution_forward::primitive_desc;

memory::dims strides(const Conv2dConfig& c) {
  return {c.stride_h, c.stride_w};
}
// oneDNN counts dilation from 0 (0 = dense).
memory::dims dilates(const Conv2dConfig& c) {
  return {c.dilation_h - 1, c.dilation_w - 1};
}
memory::dims padding_l(const Conv2dConfig& c) {
  return {c.pad_h, c.pad_w};
}
// Right padding that makes oneDNN's output size equal PyTorch's floor division: the
// last window starts at (OH - 1) * stride and ends where it ends, whatever is left of
// the input beyond it is not read.
memory::dims padding_r(const Conv2dConfig& c, const Shape& src_shape) {
  const int64_t h = src_shape[2], w = src_shape[3];
  return {(c.out_h(h) - 1) * c.stride_h + c.dilation_h * (c.kernel_h - 1) + 1 - h - c.pad_h,
          (c.out_w(w) - 1) * c.stride_w + c.dilation_w * (c.kernel_w - 1) + 1 - w - c.pad_w};
}

// The shape oneDNN's Winograd F(4x4, 3x3) implements: 3x3, stride 1, dense, ungrouped,
// unless RESNET_WINOGRAD=0 (a debugging switch). Where oneDNN has no Winograd
// implementation (no AVX-512, for example) creating it throws and the planner goes on
// to direct convolution.
bool winograd_shape(const Conv2dConfig& c) {
  static const bool enabled = [] {
    const char* v = std::getenv("RESNET_WINOGRAD");
    return v == nullptr || std::string(v) != "0";
  }();
  return enabled && c.kernel_h == 3 && c.kernel_w == 3 && c.stride_h == 1 && c.stride_w == 1 &&
         c.dilation_h == 1 && c.dilation_w == 1 && c.groups == 1;
}

// The forward primitive for one algorithm, in the pinned layouts or in oneDNN's choice;
// nothing when oneDNN has no implementation for that.
std::optional<fwd_pd_t> try_forward(const Conv2dConfig& c, const ConvRequest& r,
                                    dnnl::algorithm algorithm, bool pinned) {
  const Shape dst_shape = conv_dst_shape(c, r.src_shape);
  auto any = [](const Shape& s, memory::data_type t) {
    return memory::desc(to_dims(s), t, tag::any);
  };
  const memory::desc src =
      pinned && !r.src_pin.is_zero() ? r.src_pin : any(r.src_shape, r.src_type);
  const memory::desc dst = pinned && !r.dst_pin.is_zero() ? r.dst_pin : any(dst_shape, r.dst_type);
  const memory::desc bias = r.bias ? any({c.out_channels}, dt::f32) : memory::desc();
  const dnnl::prop_kind prop = r.purpose == ConvPurpose::training
                                   ? dnnl::prop_kind::forward_training
                                   : dnnl::prop_kind::forward_inference;
  try {
    dnnl::convolution_forward::desc d(
        prop, algorithm, src, conv_weight_desc(c, r.weight_type, true), bias, dst, strides(c),
        dilates(c), padding_l(c), padding_r(c, r.src_shape));
    return fwd_pd_t(d, with_user_scratchpad(r.attr), engine());
  } catch (const dnnl::error&) {
    return std::nullopt;
  }
}

bool uses_winograd(const fwd_pd_t& pd) {
  return std::string(pd.impl_info_str()).find("wino") != std::string::npos;
}

}  // namespace

Shape conv_dst_shape(const Conv2dConfig& c, const Shape& src_shape) {
  return {src_shape[0], c.out_channels, c.out_h(src_shape[2]), c.out_w(src_shape[3])};
}

memory::desc conv_weight_desc(const Conv2dConfig& c, memory::data_type type, bool any) {
  if (c.groups == 1)
    return memory::desc({c.out_channels, c.in_channels, c.kernel_h, c.kernel_w}, type,
                        any ? tag::any : tag::oihw);
  return memory::desc(
      {c.groups, c.out_channels / c.groups, c.in_channels / c.groups, c.kernel_h, c.kernel_w}, type,
      any ? tag::any : tag::goihw);
}

bool conv_winograd_allowed(const Conv2dConfig& c, ConvPurpose purpose, memory::data_type type) {
  if (!winograd_shape(c)) return false;
  if (purpose == ConvPurpose::training) {
    // Training runs oneDNN's Winograd for the forward and backward-data passes of 3x3
    // stride-1 convolutions and direct convolution for backward-weights, as measured on
    // the ResNet-20 training step (batch 128, 1x28x28, AVX-512, 2 threads; ms per step
    // for all such convolutions of a width, direct against Winograd):
    //   16 channels at 28x28: forward 6.22 / 5.54, backward-data 5.71 / 5.24,
    //                         backward-weights 6.31 / 8.36;
    //   32 channels at 14x14: 4.90 / 4.25, 4.74 / 4.26, 4.96 / 7.91;
    //   64 channels at 7x7:   4.65 / 3.11, 4.58 / 3.09, 5.06 / 4.90.
    // Its results stay within the f32 contract (1e-4 of the largest magnitude against
    // PyTorch's direct convolution), tested on every zoo network.
    // Only on whole 16-channel blocks: on the 1-channel stem of a Fashion-MNIST network
    // Winograd pads the input to 16 channels, and backward-weights then finds only
    // oneDNN's reference kernel (126 ms against 0.1 ms).
    return c.in_channels % 16 == 0 && c.out_channels % 16 == 0;
  }
  // Inference: Winograd is much faster for 3x3 stride-1 convolutions where oneDNN has it
  // (AVX-512 f32 and bf16). Measured on ResNet-50 at batch 1: in f32, Winograd wins at
  // every spatial size down to 7x7. In int8 it loses on both counts (5.30 ms against
  // 5.05 ms direct, and top-1 agreement with f32 on a Fashion-MNIST ResNet-20 of 99.07%
  // against 99.70%), since oneDNN's int8 Winograd works in reduced precision: int8
  // always runs direct.
  return type != memory::data_type::s8 && type != memory::data_type::u8;
}

bool is_reference_kernel(const char* impl_info) {
  return std::string(impl_info).rfind("ref", 0) == 0;
}

fwd_pd_t plan_conv_forward(const Conv2dConfig& c, const ConvRequest& r) {
  std::optional<fwd_pd_t> pd;
  if (r.winograd && conv_winograd_allowed(c, r.purpose, r.weight_type))
    pd = try_forward(c, r, dnnl::algorithm::convolution_winograd, true);
  if (!pd) pd = try_forward(c, r, dnnl::algorithm::convolution_direct, true);
  // Pinned layouts can leave only oneDNN's reference kernel (seconds, not milliseconds):
  // then oneDNN's own choice, and a reorder, is far better.
  if (!pd || is_reference_kernel(pd->impl_info_str())) {
    auto free_choice = try_forward(c, r, dnnl::algorithm::convolution_direct, false);
    if (free_choice) pd = free_choice;
  }
  RESNET_CHECK(pd.has_value(), (r.purpose == ConvPurpose::training ? "Conv2d" : "fused conv")
                                   << ": oneDNN has no implementation for input "
                                   << shape_str(r.src_shape));
  return *pd;
}

ConvBackwardPlan plan_conv_backward(const Conv2dConfig& c, const fwd_pd_t& forward,
                                    dt diff_src_type) {
  // The forward's compute type (f32, or bf16 in mixed precision) is the backward's too:
  // the gradient arriving from the layer above is read in it, the weights are, and
  // backward-weights reads the forward's input. The weight and bias gradients leave in
  // f32; the input gradient (in the forward input's layout) in diff_src_type.
  const dt compute = forward.weights_desc().data_type();
  const memory::desc src = forward.src_desc();
  const memory::desc diff_src = with_type(src, diff_src_type);
  const memory::desc diff_dst = with_type(forward.dst_desc(), compute);
  const Shape src_shape = src.dims();
  const memory::desc weights = conv_weight_desc(c, compute, true);
  const memory::desc diff_weights = conv_weight_desc(c, dt::f32, true);
  const memory::desc bias =
      c.bias ? memory::desc({c.out_channels}, dt::f32, tag::any) : memory::desc();
  auto data = [&](dnnl::algorithm algorithm) {
    dnnl::convolution_backward_data::desc d(algorithm, diff_src, weights, diff_dst, strides(c),
                                            dilates(c), padding_l(c), padding_r(c, src_shape));
    return dnnl::convolution_backward_data::primitive_desc(d, with_user_scratchpad(), engine(),
                                                           forward);
  };
  std::optional<dnnl::convolution_backward_data::primitive_desc> data_pd;
  if (uses_winograd(forward)) {
    try {
      data_pd.emplace(data(dnnl::algorithm::convolution_winograd));
    } catch (const dnnl::error&) {
    }
  }
  if (!data_pd) data_pd.emplace(data(dnnl::algorithm::convolution_direct));
  dnnl::convolution_backward_weights::desc wd(dnnl::algorithm::convolution_direct, src,
                                              diff_weights, bias, diff_dst, strides(c), dilates(c),
                                              padding_l(c), padding_r(c, src_shape));
  return {*data_pd, dnnl::convolution_backward_weights::primitive_desc(wd, with_user_scratchpad(),
                                                                       engine(), forward)};
}

}  // namespace resnet::backend::detail
