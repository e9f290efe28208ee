#include "resnet/train/data_setup.h"

#include <filesystem>

#include "resnet/core/error.h"
#include "resnet/data/image_folder.h"
#include "resnet/data/open_dataset.h"
#include "resnet/data/stats.h"
#include "resnet/data/subset.h"
#include "resnet/io/atomic_file.h"

namespace resnet::train {

namespace {

// Images of mixed sizes: statistics over this many evaluation crops.
constexpr int64_t kStatsCrops = 500;
// Fixed-size datasets: over this many first images (the first recipes' choice).
constexpr int64_t kStatsImages = 20000;

data::ChannelStats training_statistics(const data::Dataset& train, const TrainConfig& config) {
  if (!train.variable_size() && (config.size == 0 || (config.size == train.image_shape().height &&
                                                      config.size == train.image_shape().width))) {
    return data::compute_channel_stats(train, kStatsImages);
  }
  // The evaluation crop without Normalize: what the network's input is made of.
  data::PipelineOptions o;
  o.size = config.size;
  o.resize = config.resize;
  o.mean.assign(static_cast<size_t>(train.image_shape().channels), 0.0f);
  o.std.assign(o.mean.size(), 1.0f);
  data::Preprocessing p = data::make_pipeline(train, o).eval_preprocessing;
  p.mean.clear();
  p.std.clear();
  return data::compute_channel_stats(train, data::ResizeCenterCrop(p), kStatsCrops,
                                     config.skip_bad_images);
}

}  // namespace

bool uses_imagenet_statistics(const TrainConfig&) {
  return false;  // starting from torchvision weights: !config.init.empty()
}

TrainingData setup_training_data(const TrainConfig& config) {
  TrainingData d;
  data::OpenOptions open;
  open.test_optional = config.val_split > 0;
  open.skip_bad_images = config.skip_bad_images;
  data::DatasetPair pair = data::open_dataset(config.data, open);
  if (config.skip_bad_images) {
    d.bad_images = std::make_shared<data::BadImageLog>();
    for (const auto& ds : {pair.train, pair.test}) {
      if (auto* folder = dynamic_cast<const data::ImageFolderDataset*>(ds.get())) {
        d.bad_at_open.insert(d.bad_at_open.end(), folder->skipped_at_open().begin(),
                             folder->skipped_at_open().end());
      }
    }
  }
  d.train = pair.train;
  d.test = pair.test;
  if (config.val_split > 0) {
    const data::HeldOutSplit split =
        data::stratified_split(*pair.train, config.val_split, config.seed);
    d.train =
        std::make_shared<data::SubsetDataset>(pair.train, split.kept, pair.train->name() + " kept");
    d.test = std::make_shared<data::SubsetDataset>(
        pair.train, split.held_out,
        pair.train->name() + " held out (--val-split " + std::to_string(config.val_split) + ")");
    for (int64_t i : split.held_out) d.held_out.push_back(pair.train->example_name(i));
  }
  RESNET_CHECK(d.test != nullptr,
               "train: expected a test split in " << config.data << ", got none");

  const int64_t channels = d.train->image_shape().channels;
  if (uses_imagenet_statistics(config)) {
    RESNET_CHECK(channels == 3,
                 "train: expected 3-channel images to normalize with ImageNet's "
                 "statistics, got "
                     << channels << " in " << d.train->name());
    d.mean = data::imagenet_mean();
    d.std = data::imagenet_std();
  } else {
    const data::ChannelStats stats = training_statistics(*d.train, config);
    d.mean = stats.mean;
    d.std = stats.std;
  }

  data::PipelineOptions o;
  o.size = config.size;
  o.resize = config.resize;
  o.crop_padding = config.crop_padding;
  o.flip = config.flip;
  o.erasing = config.erasing;
  o.reduced_decode = config.reduced_decode;
  o.mean = d.mean;
  o.std = d.std;
  const data::Pipeline pipeline = data::make_pipeline(*d.train, o);
  d.eval_resize = pipeline.resize;

  data::LoaderOptions train_options;
  train_options.batch_size = config.batch;
  train_options.seed = config.seed;
  train_options.workers = config.workers;
  train_options.prefetch = std::max<int64_t>(2, config.workers);
  train_options.sample_transform = pipeline.train_sample;
  train_options.transform = pipeline.train;
  train_options.bad_images = d.bad_images;
  d.train_loader = std::make_unique<data::DataLoader>(d.train, train_options);
  data::LoaderOptions test_options = train_options;
  test_options.batch_size = config.eval_batch;
  test_options.shuffle = false;
  test_options.sample_transform = pipeline.eval_sample;
  test_options.transform = pipeline.eval;
  d.test_loader = std::make_unique<data::DataLoader>(d.test, test_options);
  d.input = d.train_loader->sample_shape();
  RESNET_CHECK(d.test_loader->sample_shape() == d.input,
               "train: expected the test images to have the training images' shape "
                   << d.input.str() << ", got " << d.test_loader->sample_shape().str() << " in "
                   << d.test->name());
  return d;
}

void write_val_split(const TrainingData& data, const std::string& dir) {
  if (data.held_out.empty()) return;
  std::string text;
  for (const std::string& name : data.held_out) text += name + "\n";
  io::write_file_atomic((std::filesystem::path(dir) / "val_split.txt").string(), text);
}

int64_t write_bad_images(const TrainingData& data, const std::string& dir) {
  if (!data.bad_images) return 0;
  std::vector<std::string> lines = data.bad_at_open;
  for (std::string& line : data.bad_images->lines()) lines.push_back(std::move(line));
  if (lines.empty()) return 0;
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  io::write_file_atomic((std::filesystem::path(dir) / "bad_images.txt").string(), text);
  return static_cast<int64_t>(lines.size());
}

}  // namespace resnet::train
