#pragma once
// BasicBlock: torchvision.models.resnet.BasicBlock (expansion 1).
//   conv1 3x3(inplanes -> planes, stride), bn1, relu, conv2 3x3(planes -> planes), bn2,
//   downsample (optional: the shortcut's projection; printed only when present)
// forward: relu(bn2(conv2(relu(bn1(conv1(x))))) + (downsample ? downsample(x) : x)).
// With `plain`, there is no shortcut at all (the paper's plain networks); it prints
// as PlainBlock.

#include "resnet/nn/relu.h"
#include "resnet/nn/residual_unit.h"

namespace resnet::nn {

class BasicBlock : public ResidualUnit {
 public:
  static constexpr int64_t kExpansion = 1;
  BasicBlock(int64_t inplanes, int64_t planes, int64_t stride = 1, ModulePtr downsample = nullptr,
             bool plain = false);
};

}  // namespace resnet::nn
