#include "train_model.h"

#include "resnet/models/zoo.h"
#include "resnet/nn/init.h"
#include "resnet/nn/resnet.h"
#include "resnet/train/lr_schedule_spec.h"

namespace resnet::train {

TrainingModel make_training_model(TrainConfig& config, int64_t total_steps) {
  TrainingModel m;
  nn::init::manual_seed(config.seed);
  m.model = models::build(config.model, config.model_options);
  config.model_options = models::resolve_options(config.model, config.model_options);
  // Nothing reads the image's gradient; skipping it saves conv1's backward-data pass.
  if (auto* net = dynamic_cast<nn::ResNet*>(m.model.get())) net->set_input_grad(false);
  m.model->train();

  SgdOptions sgd_options;
  sgd_options.lr = config.lr;
  sgd_options.momentum = config.momentum;
  sgd_options.nesterov = config.nesterov;
  sgd_options.weight_decay = config.weight_decay;
  sgd_options.decay_bn_and_bias = config.decay_bn_and_bias;
  m.sgd = std::make_unique<Sgd>(*m.model, sgd_options);
  m.schedule = parse_lr_schedule(config.schedule, config.lr, total_steps, config.warmup_steps);
  return m;
}

}  // namespace resnet::train
