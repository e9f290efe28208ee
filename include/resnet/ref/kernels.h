#pragma once
// Naive reference kernels: slow, obviously correct loops over plain NCHW f32 tensors.
// They are the oracle the tests hold the oneDNN-backed layers to, and they are never
// used on a hot path. Shapes: src [N, C, H, W], weight [OC, IC/groups, KH, KW].

#include "resnet/tensor/tensor.h"

namespace resnet::ref {

struct Conv2dParams {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;
};

// dst [N, OC, OH, OW]; bias may be undefined (no bias).
Tensor conv2d_forward(const Tensor& src, const Tensor& weight, const Tensor& bias,
                      const Conv2dParams& p);
// diff_src [N, IC, H, W] from diff_dst [N, OC, OH, OW].
Tensor conv2d_backward_data(const Tensor& diff_dst, const Tensor& weight, const Shape& src_shape,
                            const Conv2dParams& p);
// diff_weight [OC, IC/groups, KH, KW]; diff_bias [OC] written when diff_bias is non-null.
Tensor conv2d_backward_weights(const Tensor& diff_dst, const Tensor& src, const Shape& weight_shape,
                               const Conv2dParams& p, Tensor* diff_bias);

struct BatchNormTrainResult {
  Tensor dst;
  Tensor mean;  // [C] batch mean
  Tensor var;   // [C] biased batch variance (used to normalize)
};
// Training-mode batch norm over N, H, W per channel, biased variance.
BatchNormTrainResult batchnorm2d_forward_train(const Tensor& src, const Tensor& weight,
                                               const Tensor& bias, double eps);
// Eval-mode batch norm with the given statistics.
Tensor batchnorm2d_forward_eval(const Tensor& src, const Tensor& weight, const Tensor& bias,
                                const Tensor& mean, const Tensor& var, double eps);
struct BatchNormBackwardResult {
  Tensor diff_src, diff_weight, diff_bias;
};
// Backward of the training-mode forward (mean and var are the batch statistics).
BatchNormBackwardResult batchnorm2d_backward_train(const Tensor& diff_dst, const Tensor& src,
                                                   const Tensor& weight, const Tensor& mean,
                                                   const Tensor& var, double eps);
// Backward of the eval-mode forward (mean and var are constants).
BatchNormBackwardResult batchnorm2d_backward_eval(const Tensor& diff_dst, const Tensor& src,
                                                  const Tensor& weight, const Tensor& mean,
                                                  const Tensor& var, double eps);

Tensor relu_forward(const Tensor& src);
// diff_src = diff_dst where src > 0, else 0.
Tensor relu_backward(const Tensor& diff_dst, const Tensor& src);
Tensor add(const Tensor& a, const Tensor& b);

// Max pooling with -inf padding, PyTorch semantics (ceil_mode false).
Tensor maxpool2d_forward(const Tensor& src, int64_t kernel, int64_t stride, int64_t pad);
Tensor maxpool2d_backward(const Tensor& diff_dst, const Tensor& src, int64_t kernel, int64_t stride,
                          int64_t pad);
// Global average pooling to [N, C, 1, 1].
Tensor global_avgpool_forward(const Tensor& src);
Tensor global_avgpool_backward(const Tensor& diff_dst, const Shape& src_shape);
// dst [N, OUT] = src [N, IN] * weight[OUT, IN]^T + bias[OUT] (bias may be undefined).
Tensor linear_forward(const Tensor& src, const Tensor& weight, const Tensor& bias);
Tensor linear_backward_data(const Tensor& diff_dst, const Tensor& weight);
Tensor linear_backward_weights(const Tensor& diff_dst, const Tensor& src, Tensor* diff_bias);

}  // namespace resnet::ref
