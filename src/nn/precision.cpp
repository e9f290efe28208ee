#include "resnet/nn/precision.h"

#include "resnet/nn/conv2d.h"

namespace resnet::nn {

int64_t set_conv_compute_type(Module& model, DType type) {
  int64_t count = 0;
  for (auto& [name, m] : model.named_modules()) {
    if (auto* conv = dynamic_cast<Conv2d*>(m)) {
      conv->set_compute_type(type);
      ++count;
    }
  }
  return count;
}

}  // namespace resnet::nn
