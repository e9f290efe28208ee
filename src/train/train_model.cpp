#include "train_model.h"

#include <cstdio>

#include "resnet/backend/activation_ops.h"
#include "resnet/core/error.h"
#include "resnet/infer/compile_chain.h"
#include "resnet/models/zoo.h"
#include "resnet/nn/init.h"
#include "resnet/nn/precision.h"
#include "resnet/nn/resnet.h"
#include "resnet/train/lr_schedule_spec.h"

namespace resnet::train {

void apply_precision(nn::Module& model, std::string& precision) {
  RESNET_CHECK(precision == "f32" || precision == "bf16",
               "--precision " << precision << ": expected f32 or bf16");
  if (precision != "bf16") return;
  const std::string note = backend::bf16_fallback_note();
  if (!note.empty()) {
    std::printf("%s\n", note.c_str());
    precision = "f32";
    return;
  }
  nn::set_conv_compute_type(model, DType::bf16);
}

TrainingModel make_training_model(TrainConfig& config, int64_t total_steps, bool resume) {
  TrainingModel m;
  nn::init::manual_seed(config.seed);
  m.model = models::build(config.model, config.model_options);
  config.model_options = models::resolve_options(config.model, config.model_options);
  if (!config.init.empty() && !resume)
    m.origin = load_init_weights(*m.model, config.init, config.model);
  apply_freeze(*m.model, config.freeze);
  apply_precision(*m.model, config.precision);
  // Nothing reads the image's gradient; skipping it saves conv1's backward-data pass.
  // The frozen prefix (if any) runs compiled, as inference does.
  if (auto* net = dynamic_cast<nn::ResNet*>(m.model.get())) {
    net->set_input_grad(false);
    net->set_prefix_compiler(infer::compile_chain);
  }
  m.model->train();

  SgdOptions sgd_options;
  sgd_options.lr = config.lr;
  sgd_options.momentum = config.momentum;
  sgd_options.nesterov = config.nesterov;
  sgd_options.weight_decay = config.weight_decay;
  sgd_options.decay_bn_and_bias = config.decay_bn_and_bias;
  m.sgd = std::make_unique<Sgd>(*m.model, sgd_options);
  apply_lr_backbone(*m.sgd, *m.model, config.lr_backbone);
  if (config.ema > 0.0)
    m.ema = std::make_unique<Ema>(models::build(config.model, config.model_options), *m.model,
                                  config.ema);
  m.schedule = parse_lr_schedule(config.schedule, config.lr, total_steps, config.warmup_steps);
  return m;
}

}  // namespace resnet::train
