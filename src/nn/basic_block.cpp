#include "resnet/nn/basic_block.h"

#include "resnet/core/error.h"

namespace resnet::nn {

BasicBlock::BasicBlock(int64_t inplanes, int64_t planes, int64_t stride, ModulePtr downsample,
                       bool plain)
    : ResidualUnit(plain ? "PlainBlock" : "BasicBlock") {
  RESNET_CHECK(inplanes > 0 && planes > 0 && stride > 0,
               type_name() << ": expected positive inplanes, planes and stride, got " << inplanes
                           << ", " << planes << ", " << stride);
  RESNET_CHECK(!(plain && downsample), "PlainBlock: a plain block has no downsample");
  auto conv1 = register_module("conv1", std::make_shared<Conv2d>(Conv2dOptions::square(
                                            inplanes, planes, 3, stride, 1, false)));
  auto bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(planes));
  auto relu = register_module("relu", std::make_shared<ReLU>(true));
  auto conv2 = register_module(
      "conv2", std::make_shared<Conv2d>(Conv2dOptions::square(planes, planes, 3, 1, 1, false)));
  auto bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(planes));
  if (downsample) register_module("downsample", downsample);
  set_main_path({{conv1.get(), bn1.get()}, {conv2.get(), bn2.get()}}, relu.get());
  set_shortcut(downsample.get(), !plain);
}

}  // namespace resnet::nn
