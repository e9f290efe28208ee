#pragma once
// Mixed-precision training: the type a network's convolutions compute in.
//
// bf16: every Conv2d rounds its input, its weights and the gradient it receives to
// bfloat16 and accumulates in f32 (backend::Conv2dKernel::set_compute_type). What stays
// f32: the parameters (the master weights the optimizer updates), their gradients, the
// SGD state, batch norm (its statistics, normalization and backward), ReLU, the residual
// add, pooling, the classifier and the loss. bf16 keeps f32's 8-bit exponent, so
// gradients do not underflow where f32's would not and no loss scaling is needed (unlike
// fp16, whose 5-bit exponent loses gradients below 6e-8).

#include <cstdint>

#include "resnet/nn/module.h"

namespace resnet::nn {

// Sets the compute type (f32 or bf16) of every Conv2d under `model`; returns how many.
int64_t set_conv_compute_type(Module& model, DType type);

}  // namespace resnet::nn
