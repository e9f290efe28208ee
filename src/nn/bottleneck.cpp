#include "resnet/nn/bottleneck.h"

#include "resnet/core/error.h"

namespace resnet::nn {

Bottleneck::Bottleneck(int64_t inplanes, int64_t planes, int64_t stride, ModulePtr downsample,
                       int64_t groups, int64_t base_width)
    : ResidualUnit("Bottleneck") {
  RESNET_CHECK(inplanes > 0 && planes > 0 && stride > 0 && groups > 0 && base_width > 0,
               "Bottleneck: expected positive inplanes, planes, stride, groups and base_width");
  // torchvision: int(planes * (base_width / 64.0)) * groups
  const int64_t width =
      static_cast<int64_t>(static_cast<double>(planes) * (static_cast<double>(base_width) / 64.0)) *
      groups;
  auto conv1 = register_module(
      "conv1", std::make_shared<Conv2d>(Conv2dOptions::square(inplanes, width, 1, 1, 0, false)));
  auto bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(width));
  auto conv2 = register_module("conv2", std::make_shared<Conv2d>(Conv2dOptions::square(
                                            width, width, 3, stride, 1, false, groups)));
  auto bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(width));
  auto conv3 = register_module("conv3", std::make_shared<Conv2d>(Conv2dOptions::square(
                                            width, planes * kExpansion, 1, 1, 0, false)));
  auto bn3 = register_module("bn3", std::make_shared<BatchNorm2d>(planes * kExpansion));
  auto relu = register_module("relu", std::make_shared<ReLU>(true));
  if (downsample) register_module("downsample", downsample);
  set_main_path({{conv1.get(), bn1.get()}, {conv2.get(), bn2.get()}, {conv3.get(), bn3.get()}},
                relu.get());
  set_shortcut(downsample.get(), true);
}

}  // namespace resnet::nn
