#pragma once
// The model side of a training run: the network a TrainConfig names, its optimizer and its
// learning-rate schedule.

#include <memory>

#include "resnet/nn/module.h"
#include "resnet/train/lr_schedule.h"
#include "resnet/train/sgd.h"
#include "resnet/train/trainer.h"

namespace resnet::train {

struct TrainingModel {
  nn::ModulePtr model;
  std::unique_ptr<Sgd> sgd;
  std::unique_ptr<LrSchedule> schedule;
};

// Builds the network from the seed (config.model_options as make_training_data set them,
// resolved in place), in training mode, and its SGD over `total_steps` steps.
TrainingModel make_training_model(TrainConfig& config, int64_t total_steps);

}  // namespace resnet::train
