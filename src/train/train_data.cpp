#include "train_data.h"

#include "resnet/data/open_dataset.h"
#include "resnet/data/transforms.h"

namespace resnet::train {

namespace {

// Images sampled for the normalization statistics: enough for 4 significant digits.
constexpr int64_t kStatsImages = 20000;

std::shared_ptr<const data::Transform> training_transform(const TrainConfig& config,
                                                          const data::ImageShape& shape,
                                                          const data::ChannelStats& stats) {
  std::vector<std::shared_ptr<const data::Transform>> steps;
  if (config.crop_padding > 0)
    steps.push_back(
        std::make_shared<data::RandomCrop>(shape.height, shape.width, config.crop_padding));
  if (config.flip) steps.push_back(std::make_shared<data::RandomHorizontalFlip>(0.5));
  steps.push_back(std::make_shared<data::Normalize>(stats.mean, stats.std));
  if (config.erasing > 0) steps.push_back(std::make_shared<data::RandomErasing>(config.erasing));
  return std::make_shared<data::Compose>(steps);
}

}  // namespace

TrainingData make_training_data(TrainConfig& config) {
  TrainingData d;
  d.datasets = data::open_dataset(config.data);
  d.shape = d.datasets.train->image_shape();
  config.model_options.in_channels = d.shape.channels;
  config.model_options.num_classes = d.datasets.train->num_classes();
  d.stats = data::compute_channel_stats(*d.datasets.train, kStatsImages);

  data::LoaderOptions train_options;
  train_options.batch_size = config.batch;
  train_options.seed = config.seed;
  train_options.transform = training_transform(config, d.shape, d.stats);
  d.train_loader = std::make_unique<data::DataLoader>(d.datasets.train, train_options);

  data::LoaderOptions test_options;
  test_options.batch_size = config.eval_batch;
  test_options.shuffle = false;
  test_options.transform = std::make_shared<data::Normalize>(d.stats.mean, d.stats.std);
  d.test_loader = std::make_unique<data::DataLoader>(d.datasets.test, test_options);
  return d;
}

}  // namespace resnet::train
