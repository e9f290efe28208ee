#pragma once
// The data side of a training run: the dataset a TrainConfig names and its held-out split,
// the statistics it is normalized with, the training and evaluation pipelines
// (data/pipeline.h) and their loaders, and the lists a run writes about its data.
//
// Normalization: torchvision's ImageNet mean and std when the network starts from
// torchvision's weights; otherwise the training set's own statistics -- over its first
// 20000 images for fixed-size datasets (as the first recipes), over the evaluation crops of
// 500 images spread over the set for images of mixed sizes.

#include <memory>
#include <string>
#include <vector>

#include "resnet/data/loader.h"
#include "resnet/data/stats.h"
#include "resnet/train/trainer.h"

namespace resnet::train {

struct TrainingData {
  // The training and test sets; with val_split, the kept and the held-out part of train.
  data::DatasetPair datasets;
  data::ImageShape shape;  // [C, H, W] of a training batch's images
  data::ChannelStats stats;
  int64_t eval_resize = 0;  // CheckpointInfo::eval_resize: 0 unless images are crop-resized
  std::unique_ptr<data::DataLoader> train_loader;
  std::unique_ptr<data::DataLoader> test_loader;
  // Non-null with skip_bad_images; bad_at_open lists the files left out when opening.
  std::shared_ptr<data::BadImageLog> bad_images;
  std::vector<std::string> bad_at_open;
  // With val_split: the held-out examples' names (file paths, or "NAME #INDEX").
  std::vector<std::string> held_out;
};

// Whether the run normalizes with ImageNet's statistics: when it starts from torchvision
// weights.
bool uses_imagenet_statistics(const TrainConfig& config);

// Opens config.data and builds the loaders. Sets config.model_options' in_channels and
// num_classes to the data's. Rank `rank` of `ranks` loads its shard of every training and
// test batch (data::LoaderOptions::shard_rank).
TrainingData make_training_data(TrainConfig& config, int64_t rank = 0, int64_t ranks = 1);

// A checksum of what the data is: sizes, class names, labels, normalization statistics
// (ranks of one run must agree on it).
uint64_t data_fingerprint(const TrainingData& data);

// Writes DIR/val_split.txt (with a held-out split) atomically.
void write_val_split(const TrainingData& data, const std::string& dir);
// Writes DIR/bad_images.txt atomically when images were skipped; returns how many.
int64_t write_bad_images(const TrainingData& data, const std::string& dir);

}  // namespace resnet::train
