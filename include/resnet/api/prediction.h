#pragma once
// From logits to classes: softmax probabilities and the most probable classes, as
// `resnet predict` reports them.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "resnet/data/preprocess.h"
#include "resnet/tensor/tensor.h"

namespace resnet {

struct ClassScore {
  int64_t index = 0;         // the class's index among the model's outputs
  double probability = 0.0;  // its softmax probability
};

// Softmax of one row of `classes` logits, in double with the maximum subtracted.
std::vector<double> softmax(const float* logits, int64_t classes);

// The indices of the k largest of `p`, largest first, ties to the lower index;
// 1 <= k <= p.size(), else resnet::Error.
std::vector<int64_t> top_classes(const std::vector<double>& p, int64_t k);

// A model's class probabilities from one row of its outputs: softmax of logits, or the
// row itself for a model whose graph ends in Softmax (infer::outputs_probabilities).
std::vector<double> class_probabilities(const float* outputs, int64_t classes,
                                        bool outputs_probabilities);

// Which preprocessing turns an image into a model's input, as `resnet predict` and
// `resnet serve` choose it. `mode` is "checkpoint" (the recipe the model file records,
// `recorded`), "imagenet" (torchvision's, for 3-channel models), "none" (the image as it
// is, scaled to [0, 1]), or empty for the default: the recorded recipe when there is one,
// else ImageNet's. `model` names the model in errors, which say what to use instead.
data::Preprocessing choose_preprocessing(const std::string& mode,
                                         const std::optional<data::Preprocessing>& recorded,
                                         int64_t in_channels, const std::string& model);

// For each row of [N, classes] logits (plain f32), its k most probable classes (k is
// capped at the class count).
std::vector<std::vector<ClassScore>> top_k(const Tensor& logits, int64_t k = 5);

}  // namespace resnet
