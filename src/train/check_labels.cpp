#include "check_labels.h"

#include "resnet/core/error.h"

namespace resnet::train::detail {

void check_logits_and_labels(const char* who, const Tensor& logits,
                             std::span<const int64_t> labels) {
  RESNET_CHECK(logits.defined(), who << ": expected logits [N, K], got an undefined tensor");
  RESNET_CHECK(logits.dtype() == DType::f32,
               who << ": expected f32 logits, got " << dtype_name(logits.dtype()));
  RESNET_CHECK(
      logits.rank() == 2 && logits.dim(0) >= 1 && logits.dim(1) >= 1,
      who << ": expected logits [N, K] with N >= 1 and K >= 1, got " << logits.shape_str());
  const int64_t n = logits.dim(0), k = logits.dim(1);
  RESNET_CHECK(static_cast<int64_t>(labels.size()) == n,
               who << ": expected " << n << " labels (one per row of logits " << logits.shape_str()
                   << "), got " << labels.size());
  for (int64_t i = 0; i < n; ++i) {
    RESNET_CHECK(labels[i] >= 0 && labels[i] < k,
                 who << ": label " << labels[i] << " of sample " << i
                     << " is out of range: expected a class index in [0, " << k << ") for " << k
                     << " classes");
  }
}

}  // namespace resnet::train::detail
