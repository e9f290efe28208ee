#pragma once
// Moving a module's state_dict in and out of safetensors files.
//
// Loading is strict, like PyTorch's load_state_dict(strict=True): every key of the
// module must be present with the same shape, and the file may hold no other keys.
// num_batches_tracked is stored as I64, everything else as F32 (F16, BF16 and F64 in a
// file are converted on read by the safetensors reader).

#include <map>
#include <string>

#include "resnet/nn/module.h"

namespace resnet::io {

// Loads `path` into `module`; errors name the file and the tensor.
void load_state_dict(nn::Module& module, const std::string& path);
// Writes module.state_dict() atomically, with optional metadata.
void save_state_dict(nn::Module& module, const std::string& path,
                     const std::map<std::string, std::string>& metadata = {});
// Writes every parameter's gradient under its state_dict name.
void save_gradients(nn::Module& module, const std::string& path);

}  // namespace resnet::io
