#include "resnet/infer/compile_chain.h"

#include <memory>

#include "resnet/infer/compiled_model.h"
#include "resnet/infer/lower_module.h"

namespace resnet::infer {

nn::ChainRunner compile_chain(const nn::ModuleChain& chain) {
  CompileOptions options;
  options.keep_buffers = false;
  // Shared: std::function needs a copyable target.
  auto model = std::make_shared<CompiledModel>(lower_chain(chain), options);
  return [model](const Tensor& x) { return model->run(x); };
}

}  // namespace resnet::infer
