#include "train_data.h"

#include <filesystem>
#include <map>
#include <optional>

#include "resnet/core/error.h"
#include "resnet/data/image_folder.h"
#include "resnet/data/open_dataset.h"
#include "resnet/data/pipeline.h"
#include "resnet/data/stats.h"
#include "resnet/data/subset.h"
#include "resnet/dist/communicator.h"
#include "resnet/io/atomic_file.h"
#include "resnet/io/safetensors.h"
#include "resnet/train/checkpoint_info.h"

namespace resnet::train {

namespace {

// Images sampled for the normalization statistics: enough for 4 significant digits.
constexpr int64_t kStatsImages = 20000;
// Images of mixed sizes: statistics over this many evaluation crops (each costs a decode).
constexpr int64_t kStatsCrops = 500;

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

// The normalization a run from --init continues with: a checkpoint of ours records the
// statistics its network learned on; a bare torchvision state_dict was trained on
// ImageNet-normalized RGB. None: normalize with the data's own statistics (a run from
// scratch, or bare weights for images that are not RGB).
std::optional<data::ChannelStats> init_statistics(const TrainConfig& config, int64_t channels) {
  if (config.init.empty()) return std::nullopt;
  const std::map<std::string, std::string> metadata = io::read_safetensors(config.init).metadata;
  if (metadata.count("normalize_mean")) {
    const CheckpointInfo info = CheckpointInfo::from_metadata(metadata, config.init);
    if (static_cast<int64_t>(info.mean.size()) == channels)
      return data::ChannelStats{info.mean, info.std};
  }
  if (channels != 3) return std::nullopt;
  return data::ChannelStats{data::imagenet_mean(), data::imagenet_std()};
}

TrainingData make_training_data(TrainConfig& config, int64_t rank, int64_t ranks) {
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
  d.datasets = pair;
  if (config.val_split > 0) {
    const data::HeldOutSplit split =
        data::stratified_split(*pair.train, config.val_split, config.seed);
    d.datasets.train =
        std::make_shared<data::SubsetDataset>(pair.train, split.kept, pair.train->name() + " kept");
    d.datasets.test = std::make_shared<data::SubsetDataset>(
        pair.train, split.held_out,
        pair.train->name() + " held out (--val-split " + std::to_string(config.val_split) + ")");
    for (int64_t i : split.held_out) d.held_out.push_back(pair.train->example_name(i));
  }
  const std::shared_ptr<const data::Dataset>& train = d.datasets.train;
  const std::shared_ptr<const data::Dataset>& test = d.datasets.test;
  RESNET_CHECK(test != nullptr, "train: expected a test split in " << config.data << ", got none");

  config.model_options.in_channels = train->image_shape().channels;
  // --num-classes is optional (the data decides); given, it must agree with the data.
  RESNET_CHECK(config.model_options.num_classes == 0 ||
                   config.model_options.num_classes == train->num_classes(),
               "train: --num-classes " << config.model_options.num_classes << " does not match "
                                       << config.data << ", which has " << train->num_classes()
                                       << " classes");
  config.model_options.num_classes = train->num_classes();
  const int64_t channels = train->image_shape().channels;
  if (std::optional<data::ChannelStats> recorded = init_statistics(config, channels)) {
    d.stats = *recorded;
  } else {
    d.stats = training_statistics(*train, config);
  }

  data::PipelineOptions o;
  o.size = config.size;
  o.resize = config.resize;
  o.crop_padding = config.crop_padding;
  o.flip = config.flip;
  o.erasing = config.erasing;
  o.reduced_decode = config.reduced_decode;
  o.crop_scale = config.crop_scale;
  o.mean = d.stats.mean;
  o.std = d.stats.std;
  const data::Pipeline pipeline = data::make_pipeline(*train, o);
  d.eval_resize = pipeline.resize;

  data::LoaderOptions train_options;
  train_options.batch_size = config.batch;
  train_options.seed = config.seed;
  train_options.workers = config.workers;
  train_options.prefetch = std::max<int64_t>(2, config.workers);
  train_options.sample_transform = pipeline.train_sample;
  train_options.transform = pipeline.train;
  train_options.bad_images = d.bad_images;
  train_options.shard_rank = rank;
  train_options.shard_count = ranks;
  d.train_loader = std::make_unique<data::DataLoader>(train, train_options);
  data::LoaderOptions test_options = train_options;
  test_options.batch_size = config.eval_batch;
  test_options.shuffle = false;
  test_options.sample_transform = pipeline.eval_sample;
  test_options.transform = pipeline.eval;
  d.test_loader = std::make_unique<data::DataLoader>(test, test_options);
  d.shape = d.train_loader->sample_shape();
  RESNET_CHECK(d.test_loader->sample_shape() == d.shape,
               "train: expected the test images to have the training images' shape "
                   << d.shape.str() << ", got " << d.test_loader->sample_shape().str() << " in "
                   << test->name());
  return d;
}

uint64_t data_fingerprint(const TrainingData& data) {
  std::string text;
  for (const auto& set : {data.datasets.train, data.datasets.test}) {
    text += set->name() + "|" + std::to_string(set->size()) + "|";
    for (const std::string& name : set->class_names()) text += name + ",";
    int64_t label_sum = 0;
    for (int64_t i = 0; i < set->size(); ++i) label_sum += set->label(i) * (i % 7919 + 1);
    text += std::to_string(label_sum) + "|";
  }
  for (float v : data.stats.mean) text += std::to_string(v) + ",";
  for (float v : data.stats.std) text += std::to_string(v) + ",";
  return dist::fnv1a(std::as_bytes(std::span(text.data(), text.size())));
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
