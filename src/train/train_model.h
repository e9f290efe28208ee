#pragma once
// The model side of a training run: the network a TrainConfig names (from the seed, or
// from --init's weights), what of it is frozen, its optimizer (with --lr-backbone), its
// learning-rate schedule and, with --ema, the moving average of its weights.

#include <memory>

#include "resnet/nn/module.h"
#include "resnet/train/ema.h"
#include "resnet/train/fine_tune.h"
#include "resnet/train/lr_schedule.h"
#include "resnet/train/sgd.h"
#include "resnet/train/trainer.h"

namespace resnet::train {

struct TrainingModel {
  nn::ModulePtr model;
  std::unique_ptr<Sgd> sgd;
  std::unique_ptr<LrSchedule> schedule;
  std::unique_ptr<Ema> ema;  // with --ema only
  InitOrigin origin;         // with --init only, in a fresh run
};

// Sets the convolutions' compute type for `precision` ("f32" or "bf16"); bf16 on a CPU
// without it prints one line and becomes "f32" (in place, so config.json records it).
void apply_precision(nn::Module& model, std::string& precision);

// Builds the network from the seed (config.model_options as make_training_data set them,
// resolved in place), loads --init's weights (not when resuming: the run's own checkpoint
// replaces them), freezes --freeze's modules, and puts it in training mode; then its SGD
// over `total_steps` steps and its moving average.
TrainingModel make_training_model(TrainConfig& config, int64_t total_steps, bool resume);

}  // namespace resnet::train
