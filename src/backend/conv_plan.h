#pragma once
// Private to src/backend/: the one convolution planner behind both convolution kernels,
// Conv2dKernel (training: forward_training and the two backward passes, on Tensors) and
// FusedConv2d (inference: forward_inference with post-ops, f32/bf16/int8). Both run
// on Tensors. As in oneDNN's own training example, the two differ only in prop_kind,
// in the attr (post-ops, int8 output scales) and in the backward descriptors; the
// geometry (strides, dilation, PyTorch's floor-division padding, the grouped weight
// descriptor) and the algorithm policy are written here once.

#include "dnnl_context.h"
#include "resnet/backend/conv2d.h"

namespace resnet::backend::detail {

// What the primitive is for. The Winograd policy differs between the two, for the
// measured reasons at conv_winograd_allowed.
enum class ConvPurpose { training, inference };

// One forward convolution to plan: its input shape, element types, layouts and attr.
struct ConvRequest {
  ConvPurpose purpose = ConvPurpose::training;
  Shape src_shape;  // [N, IC, H, W]
  memory::data_type src_type = memory::data_type::f32;
  memory::data_type weight_type = memory::data_type::f32;
  memory::data_type dst_type = memory::data_type::f32;
  bool bias = false;  // an f32 bias of [OC]
  // A layout to read or write as it is, or a zero descriptor to let oneDNN choose.
  // Pins that only oneDNN's reference kernel accepts are dropped (see plan_conv_forward).
  memory::desc src_pin, dst_pin;
  // Post-ops and output scales (inference); empty for training.
  dnnl::primitive_attr attr;
  // False: the caller's numerics forbid Winograd here (Conv2dKernel::set_winograd).
  bool winograd = true;
};

// [N, OC, OH, OW] for an input of `src_shape` (floor division, as PyTorch).
Shape conv_dst_shape(const Conv2dConfig& c, const Shape& src_shape);
// oneDNN's view of the weights, [OC, IC, KH, KW] or, for grouped convolutions,
// [G, OC/G, IC/G, KH, KW]: in its plain layout (oihw/goihw) or tag::any.
memory::desc conv_weight_desc(const Conv2dConfig& c, memory::data_type type, bool any);
// Whether oneDNN's Winograd F(4x4, 3x3) may be tried for this convolution, this purpose
// and this weight type.
bool conv_winograd_allowed(const Conv2dConfig& c, ConvPurpose purpose, memory::data_type type);
// Whether oneDNN picked its reference implementation ("ref:any", ...): correct but
// orders of magnitude slower than its jit kernels.
bool is_reference_kernel(const char* impl_info);

// The forward primitive: Winograd in the pinned layouts where allowed, else direct
// convolution in the pinned layouts, else (when those fail or leave only the reference
// kernel) direct convolution in oneDNN's own choice of layouts, which the caller
// reorders to. Fails with a resnet::Error when oneDNN has nothing at all.
dnnl::convolution_forward::primitive_desc plan_conv_forward(const Conv2dConfig& c,
                                                            const ConvRequest& request);

// The backward passes of a training forward, in the layouts the forward chose, so that
// nothing is reordered between them. Backward-data repeats the forward's algorithm
// (Winograd or direct); backward-weights is always direct.
struct ConvBackwardPlan {
  dnnl::convolution_backward_data::primitive_desc data;
  dnnl::convolution_backward_weights::primitive_desc weights;
};
// diff_src_type: the input gradient's type (f32, or bf16 in mixed precision).
ConvBackwardPlan plan_conv_backward(const Conv2dConfig& c,
                                    const dnnl::convolution_forward::primitive_desc& forward,
                                    memory::data_type diff_src_type);

}  // namespace resnet::backend::detail
