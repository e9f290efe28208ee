#pragma once
// The arithmetic of the paper's shortcut option A (He et al. 2015, section 4.2) on f32
// NCHW tensors, plain or blocked16 (the output keeps the input's layout): the identity subsampled
// by a stride and widened by zero channels,
//   y[n, c + before, i, j] = x[n, c, i * stride_h, j * stride_w],
// with every other channel of y zero; y is [N, C + before + after, ceil(H / stride_h),
// ceil(W / stride_w)], as PyTorch's x[:, :, ::s, ::s] followed by F.pad on the channels.
// Used by the training layer (nn::ZeroPadShortcut) and by compiled models (a subsample
// step is stride with no channels, a channel-pad step channels with stride 1).

#include "resnet/tensor/tensor.h"

namespace resnet::backend {

Tensor subsample_pad_channels(const Tensor& x, int64_t stride_h, int64_t stride_w, int64_t before,
                              int64_t after);
// The gradient of subsample_pad_channels for an input of `x_shape`:
//   dx[n, c, i * stride_h, j * stride_w] = dy[n, c + before, i, j], zero elsewhere.
Tensor subsample_pad_channels_backward(const Tensor& dy, const Shape& x_shape, int64_t stride_h,
                                       int64_t stride_w, int64_t before);

}  // namespace resnet::backend
