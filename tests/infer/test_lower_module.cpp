// Lowering's errors name the module by its path in the model and its class.

#include "resnet/infer/lower_module.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "resnet/core/error.h"
#include "resnet/nn/adaptive_avgpool2d.h"
#include "resnet/nn/relu.h"
#include "resnet/nn/sequential.h"

namespace resnet::infer {
namespace {

std::string lowering_error(nn::Module& m) {
  try {
    lower_module(m);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(LowerModule, ErrorsNameTheModulesPath) {
  auto inner = std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{
      std::make_shared<nn::ReLU>(), std::make_shared<nn::AdaptiveAvgPool2d>(2)});
  nn::Sequential model(std::vector<nn::ModulePtr>{std::make_shared<nn::ReLU>(), inner});
  const std::string message = lowering_error(model);
  EXPECT_NE(message.find("lowering: 1.1 (AdaptiveAvgPool2d): expected an AdaptiveAvgPool2d to "
                         "1x1"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("found output 2x2"), std::string::npos) << message;
}

}  // namespace
}  // namespace resnet::infer
