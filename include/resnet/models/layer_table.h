#pragma once
// The per-layer table of `resnet summary --table`: every leaf module's output shape,
// parameter count and multiply-accumulates for one input, with totals.

#include <string>

#include "resnet/nn/module.h"

namespace resnet::models {

struct LayerTableTotals {
  int64_t parameters = 0;
  int64_t macs = 0;  // multiply-accumulates of convolutions and linear layers
};

// Runs one forward pass of `model` on zeros of `input_shape` (eval mode, through the
// module tree) and returns the table as text; `totals` receives the sums.
std::string layer_table(nn::Module& model, const Shape& input_shape,
                        LayerTableTotals* totals = nullptr);

}  // namespace resnet::models
