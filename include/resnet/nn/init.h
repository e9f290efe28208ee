#pragma once
// Parameter initialization and the global random generator behind it (like
// torch.manual_seed). The generator is not PyTorch's, so equal seeds give different
// numbers than PyTorch; distributions and bounds are PyTorch's. Safe to use from several
// threads (it is locked), but only one thread's sequence is reproducible from a seed.

#include <cstdint>

#include "resnet/tensor/tensor.h"

namespace resnet::nn::init {

void manual_seed(uint64_t seed);

void uniform_(Tensor& t, float lo, float hi);
void normal_(Tensor& t, float mean, float std);
// fan_in = dim(1) * receptive field; fan_out = dim(0) * receptive field.
int64_t fan_in(const Tensor& weight);
int64_t fan_out(const Tensor& weight);
// PyTorch's default for Conv2d and Linear weights: kaiming_uniform_(a=sqrt(5)), which
// is U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
void default_weight_(Tensor& weight);
// PyTorch's default bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) of the layer's weight.
void default_bias_(Tensor& bias, int64_t weight_fan_in);
// kaiming_normal_(mode="fan_out", nonlinearity="relu"): N(0, sqrt(2 / fan_out)).
void kaiming_normal_fan_out_(Tensor& weight);

}  // namespace resnet::nn::init
