#pragma once
// Bottleneck: torchvision.models.resnet.Bottleneck, "ResNet V1.5" (the stride sits on the
// 3x3 convolution), expansion 4. width = int(planes * base_width / 64) * groups:
//   conv1 1x1(inplanes -> width), bn1, conv2 3x3(width -> width, stride, groups), bn2,
//   conv3 1x1(width -> planes * 4), bn3, relu, downsample (optional)
// forward: relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + shortcut(x)).

#include "resnet/nn/relu.h"
#include "resnet/nn/residual_unit.h"

namespace resnet::nn {

class Bottleneck : public ResidualUnit {
 public:
  static constexpr int64_t kExpansion = 4;
  Bottleneck(int64_t inplanes, int64_t planes, int64_t stride = 1, ModulePtr downsample = nullptr,
             int64_t groups = 1, int64_t base_width = 64);
};

}  // namespace resnet::nn
