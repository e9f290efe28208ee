#include "resnet/data/pipeline.h"

#include "resnet/core/error.h"

namespace resnet::data {

std::vector<float> imagenet_mean() {
  return imagenet_preprocessing().mean;
}

std::vector<float> imagenet_std() {
  return imagenet_preprocessing().std;
}

int64_t default_resize(int64_t size) {
  return (size * 256 + 112) / 224;
}

Pipeline make_pipeline(const Dataset& dataset, const PipelineOptions& o) {
  const ImageShape shape = dataset.image_shape();
  RESNET_CHECK(o.size >= 0 && o.resize >= 0, dataset.name()
                                                 << ": expected a crop size and resize "
                                                 << ">= 0, got " << o.size << " and " << o.resize);
  Pipeline p;
  p.resized =
      dataset.variable_size() || (o.size > 0 && (o.size != shape.height || o.size != shape.width));
  auto normalize = std::make_shared<Normalize>(o.mean, o.std);
  normalize->output_shape({shape.channels, 1, 1});  // checks the channel count
  std::vector<std::shared_ptr<const Transform>> train;
  if (!p.resized) {
    if (o.crop_padding > 0)
      train.push_back(std::make_shared<RandomCrop>(shape.height, shape.width, o.crop_padding));
  } else {
    p.size = o.size > 0 ? o.size : kImagenetCrop;
    p.resize = o.resize > 0 ? o.resize : default_resize(p.size);
    p.train_sample = std::make_shared<RandomResizedCrop>(
        p.size, std::pair{o.crop_scale, 1.0}, std::pair{3.0 / 4.0, 4.0 / 3.0}, o.reduced_decode);
    Preprocessing& e = p.eval_preprocessing;
    e.name = "checkpoint";
    e.channels = shape.channels;
    e.resize_shorter = p.resize;
    e.crop_height = e.crop_width = p.size;
    e.mean = o.mean;
    e.std = o.std;
    p.eval_sample = std::make_shared<ResizeCenterCrop>(e);
  }
  if (o.flip) train.push_back(std::make_shared<RandomHorizontalFlip>(0.5));
  train.push_back(normalize);
  if (o.erasing > 0) train.push_back(std::make_shared<RandomErasing>(o.erasing));
  p.train = std::make_shared<Compose>(train);
  if (!p.resized) p.eval = normalize;  // the resized evaluation normalizes in its Preprocessing
  return p;
}

}  // namespace resnet::data
