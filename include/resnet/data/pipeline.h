#pragma once
// The training and evaluation transforms of a dataset, as `resnet train` and
// `resnet bench --mode data` build them.
//
// Two pipelines, chosen by the dataset and the crop size:
//   - a fixed-size dataset at its own size (Fashion-MNIST, CIFAR, folder:DIR:HxW, folders of
//     one image size): training RandomCrop(H, W, padding) when padding > 0, flips, Normalize,
//     random erasing; evaluation Normalize alone -- unchanged from the first recipes;
//   - otherwise (images of several sizes, or a crop size other than the dataset's): training
//     RandomResizedCrop(size) on 8-bit pixels, flips, Normalize, random erasing; evaluation
//     Resize(resize) then CenterCrop(size) with Normalize: the Preprocessing that
//     `resnet predict` runs on a checkpoint of such a run (preprocess.h).

#include <cstdint>
#include <memory>
#include <vector>

#include "resnet/data/dataset.h"
#include "resnet/data/preprocess.h"
#include "resnet/data/sample_transform.h"
#include "resnet/data/transforms.h"

namespace resnet::data {

inline constexpr int64_t kImagenetCrop = 224;

// Torchvision's ImageNet statistics, for networks that start from its weights.
std::vector<float> imagenet_mean();
std::vector<float> imagenet_std();

struct PipelineOptions {
  int64_t size = 0;    // crop side; 0: the dataset's own size (224 when its images differ)
  int64_t resize = 0;  // evaluation's shorter side; 0: size * 256 / 224, rounded
  int64_t crop_padding = 0;
  bool flip = true;
  double erasing = 0.0;
  bool reduced_decode = true;
  // RandomResizedCrop's smallest area fraction (torchvision's scale=(lo, 1.0)).
  double crop_scale = 0.08;
  std::vector<float> mean, std;  // Normalize's, one per channel
};

struct Pipeline {
  // True for the RandomResizedCrop / Resize + CenterCrop pipeline.
  bool resized = false;
  int64_t size = 0;    // the crop side (resized), else 0
  int64_t resize = 0;  // the evaluation's shorter side (resized), else 0
  std::shared_ptr<const SampleTransform> train_sample, eval_sample;
  std::shared_ptr<const Transform> train, eval;
  // What `resnet predict` must run on one image file for the evaluation transform.
  Preprocessing eval_preprocessing;
};

// S * 256 / 224 rounded to the nearest integer (half up): 224 -> 256, 32 -> 37.
int64_t default_resize(int64_t size);

// The pipelines for `dataset` (its channels and size decide; mean/std must match channels).
Pipeline make_pipeline(const Dataset& dataset, const PipelineOptions& options);

}  // namespace resnet::data
