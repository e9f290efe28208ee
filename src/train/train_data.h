#pragma once
// The data side of a training run: the dataset a TrainConfig names, the statistics it is
// normalized with, the training transform (augmentation) and the two loaders.

#include <memory>

#include "resnet/data/loader.h"
#include "resnet/data/stats.h"
#include "resnet/train/trainer.h"

namespace resnet::train {

struct TrainingData {
  data::DatasetPair datasets;
  data::ImageShape shape;  // [C, H, W] of a training batch's images
  data::ChannelStats stats;
  std::unique_ptr<data::DataLoader> train_loader;
  std::unique_ptr<data::DataLoader> test_loader;
};

// Opens config.data and builds the loaders. Sets config.model_options' in_channels and
// num_classes to the data's.
TrainingData make_training_data(TrainConfig& config);

}  // namespace resnet::train
