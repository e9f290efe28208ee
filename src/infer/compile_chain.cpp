#include "resnet/infer/compile_chain.h"

#include <memory>

#include "resnet/infer/compiled_model.h"
#include "resnet/infer/lower_module.h"

namespace resnet::infer {

nn::ChainRunner compile_chain(const nn::ModuleChain& chain) {
  // Shared: std::function needs a copyable target. Its activations come from the
  // storage pool that the training step beside it uses, and go back there after each run.
  auto model = std::make_shared<CompiledModel>(lower_chain(chain));
  return [model](const Tensor& x) { return model->run(x); };
}

}  // namespace resnet::infer
