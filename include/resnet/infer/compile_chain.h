#pragma once
// The inference compiler as the module tree's fast no-gradient path: a network's frozen
// prefix (nn::ResNet::set_prefix_compiler) is lowered (lower_chain) and compiled in f32,
// BN folded into the convolutions and ReLU and add fused as their post-ops. The module
// tree itself has no second engine: without a compiler, the prefix runs module by
// module.

#include "resnet/nn/resnet.h"

namespace resnet::infer {

// Compiles `chain`; the runner takes and returns plain f32 tensors and holds no
// activation buffers between runs (they would sit beside the training step's).
nn::ChainRunner compile_chain(const nn::ModuleChain& chain);

}  // namespace resnet::infer
