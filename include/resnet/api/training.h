#pragma once
// Training a network, as `resnet train` does: a train::TrainConfig holds every option of
// the command (its defaults are the README's main job: resnet20 on Fashion-MNIST, SGD with
// Nesterov momentum, one-cycle schedule, crops and flips), and train_model runs it.
//
//   resnet::TrainConfig config;
//   config.data = "fashion-mnist";   // or "cifar10:DIR", "folder:DIR", ... (data/open_dataset.h)
//   config.epochs = 5;
//   config.out = "runs/mine";
//   resnet::TrainResult r = resnet::train_model(config);
//   resnet::Model best = resnet::Model::load(config.out + "/best.safetensors");

#include "resnet/train/trainer.h"

namespace resnet {

using train::TrainConfig;
using train::TrainResult;

// Trains config.model on config.data, testing after every epoch, and writes into
// config.out: config.json, metrics.csv, steps.csv, curves.svg, last.safetensors and
// best.safetensors (checkpoints Model::load and PyTorch's load_state_dict read) and
// last.state.safetensors (what `resume` needs). With `resume` it continues the run in
// config.out where it stopped, ending with the same weights as an uninterrupted run.
// config.max_steps > 0 stops after that many steps, saving last.* (TrainResult::interrupted);
// so does setting train::stop_requested() from another thread or a signal handler. Progress
// goes to stdout. Bad data or a diverging loss end in resnet::Error.
TrainResult train_model(const TrainConfig& config, bool resume = false);

}  // namespace resnet
