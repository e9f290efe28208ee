#include "resnet/api/prediction.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "resnet/core/error.h"

namespace resnet {

std::vector<double> class_probabilities(const float* outputs, int64_t classes,
                                        bool outputs_probabilities) {
  if (outputs_probabilities) return std::vector<double>(outputs, outputs + classes);
  return softmax(outputs, classes);
}

data::Preprocessing choose_preprocessing(const std::string& mode_asked,
                                         const std::optional<data::Preprocessing>& recorded,
                                         int64_t in_channels, const std::string& model) {
  const std::string mode = mode_asked.empty() ? (recorded ? "checkpoint" : "imagenet") : mode_asked;
  data::Preprocessing p;
  if (mode == "checkpoint") {
    RESNET_CHECK(recorded.has_value(),
                 "--preprocess checkpoint: expected a model file that records its input size "
                 "and normalization (a checkpoint of resnet train), got "
                     << model << ", which does not; use --preprocess imagenet or none");
    p = *recorded;
  } else if (mode == "imagenet") {
    p = data::imagenet_preprocessing();
    RESNET_CHECK(in_channels == 3,
                 "--preprocess imagenet: expected a model taking 3 input channels, got "
                     << model << " with " << in_channels << "; use --preprocess none"
                     << (recorded ? " or checkpoint" : ""));
  } else {
    RESNET_CHECK(mode == "none",
                 "--preprocess: expected imagenet, checkpoint or none, got " << mode);
    p.name = "none";
    p.channels = in_channels;
  }
  return p;
}

std::vector<double> softmax(const float* logits, int64_t classes) {
  RESNET_CHECK(classes > 0, "softmax: expected at least one class, got " << classes);
  const double top = *std::max_element(logits, logits + classes);
  std::vector<double> p(static_cast<size_t>(classes));
  double sum = 0;
  for (int64_t j = 0; j < classes; ++j)
    sum += p[j] = std::exp(static_cast<double>(logits[j]) - top);
  for (double& v : p) v /= sum;
  return p;
}

std::vector<int64_t> top_classes(const std::vector<double>& p, int64_t k) {
  RESNET_CHECK(k >= 1 && k <= static_cast<int64_t>(p.size()),
               "top_classes: expected k between 1 and " << p.size() << ", got " << k);
  std::vector<int64_t> order(p.size());
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](int64_t a, int64_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
  order.resize(static_cast<size_t>(k));
  return order;
}

std::vector<std::vector<ClassScore>> top_k(const Tensor& logits, int64_t k) {
  RESNET_CHECK(logits.rank() == 2 && logits.dtype() == DType::f32 &&
                   logits.layout() == Layout::plain && logits.dim(1) > 0,
               "top_k: expected plain f32 logits [N, classes], got " << logits.shape_str());
  const int64_t classes = logits.dim(1);
  k = std::min(k, classes);
  std::vector<std::vector<ClassScore>> rows;
  for (int64_t i = 0; i < logits.dim(0); ++i) {
    const std::vector<double> p = softmax(logits.f32() + i * classes, classes);
    std::vector<ClassScore>& row = rows.emplace_back();
    for (int64_t c : top_classes(p, k)) row.push_back({c, p[c]});
  }
  return rows;
}

}  // namespace resnet
