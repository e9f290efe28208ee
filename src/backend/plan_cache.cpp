#include "plan_cache.h"

#include <cstring>

namespace resnet::backend::detail {

PlanKey& PlanKey::add(const Shape& dims) {
  tagged(Part::dims, static_cast<int64_t>(dims.size()));
  parts_.insert(parts_.end(), dims.begin(), dims.end());
  return *this;
}

PlanKey& PlanKey::add(const memory::desc& desc) {
  const dnnl_memory_desc_t& d = desc.data;
  const int n = d.ndims;
  tagged(Part::desc, n);
  parts_.push_back(d.data_type);
  parts_.push_back(d.format_kind);
  parts_.push_back(d.offset0);
  parts_.insert(parts_.end(), d.dims, d.dims + n);
  parts_.insert(parts_.end(), d.padded_dims, d.padded_dims + n);
  parts_.insert(parts_.end(), d.padded_offsets, d.padded_offsets + n);
  if (d.format_kind == dnnl_blocked) {
    const dnnl_blocking_desc_t& b = d.format_desc.blocking;
    parts_.insert(parts_.end(), b.strides, b.strides + n);
    parts_.push_back(b.inner_nblks);
    parts_.insert(parts_.end(), b.inner_blks, b.inner_blks + b.inner_nblks);
    parts_.insert(parts_.end(), b.inner_idxs, b.inner_idxs + b.inner_nblks);
  } else if (d.format_kind != dnnl_format_kind_undef && d.format_kind != dnnl_format_kind_any) {
    // Other formats (Winograd's packed weights, ...): their description word by word.
    // oneDNN zero-fills a descriptor before describing it, so unused bytes compare equal.
    int64_t words[(sizeof(d.format_desc) + sizeof(int64_t) - 1) / sizeof(int64_t)] = {};
    std::memcpy(words, &d.format_desc, sizeof(d.format_desc));
    parts_.insert(parts_.end(), std::begin(words), std::end(words));
  }
  int32_t scale_bits = 0;
  std::memcpy(&scale_bits, &d.extra.scale_adjust, sizeof(scale_bits));
  parts_.push_back(static_cast<int64_t>(d.extra.flags));
  parts_.push_back(d.extra.compensation_mask);
  parts_.push_back(scale_bits);
  parts_.push_back(d.extra.asymm_compensation_mask);
  return *this;
}

size_t PlanKey::hash() const {
  size_t h = parts_.size();
  for (int64_t x : parts_) h = h * 1000003u ^ static_cast<size_t>(x);
  return h;
}

}  // namespace resnet::backend::detail
