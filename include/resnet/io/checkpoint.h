#pragma once
// Moving a module's state_dict in and out of safetensors files.
//
// Loading is strict, like PyTorch's load_state_dict(strict=True): every key of the
// module must be present with the same shape, and the file may hold no other keys; the
// order of the keys in the file does not matter. num_batches_tracked is stored as I64
// (I32, I16, U32 and U16 are widened to it), everything else as F32; F16, BF16 and F64
// tensors are converted to f32 on read (F16 and BF16 exactly, F64 rounded to nearest; an
// F64 value beyond the f32 range is refused). A torchvision state_dict saved as
// safetensors therefore loads as is, in any of these dtypes. Nothing is copied into the
// module unless the whole file fits it.

#include <map>
#include <string>
#include <vector>

#include "resnet/nn/module.h"

namespace resnet::io {

// Loads `path` into `module`; errors name the file, the tensor, and `model_name` (the
// module's type name when empty). A file whose keys differ from the module's is reported
// in one message listing the first few missing and unexpected keys.
void load_state_dict(nn::Module& module, const std::string& path,
                     const std::string& model_name = "");

// Loading pretrained weights into a network with a new head (fine-tuning): strict as
// above, except that the tensors under the module path `new_head` ("fc") may differ in
// shape from the file's. When any of them does, none of them is loaded: they keep the
// module's own (freshly initialised) values and are listed in `reinitialised`.
struct LoadOptions {
  std::string model_name;  // for messages; the module's type name when empty
  std::string new_head;    // empty: fully strict
};
struct LoadReport {
  int64_t loaded = 0;                      // tensors copied from the file
  std::vector<std::string> reinitialised;  // state_dict keys left as they were
};
LoadReport load_state_dict(nn::Module& module, const std::string& path, const LoadOptions& options);
// Writes module.state_dict() atomically, with optional metadata.
void save_state_dict(nn::Module& module, const std::string& path,
                     const std::map<std::string, std::string>& metadata = {});
// Writes every parameter's gradient under its state_dict name.
void save_gradients(nn::Module& module, const std::string& path);

}  // namespace resnet::io
