#include "resnet/api/prediction.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "resnet/core/error.h"

namespace resnet {

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
