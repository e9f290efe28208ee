#pragma once
// Private to src/backend/: the one key scheme and the one cache for oneDNN primitives
// ("plans") across the backend.
//
// A PlanKey is built from what defines a primitive: shapes, layouts, element types, the
// full oneDNN descriptors of the memories it reads, and the flags that change it (a
// fused ReLU, a direction). Every part is written with a leading tag and length, so
// two different lists of parts never make the same key.
//
// Threading contract: every PlanCache is locked. A lookup, and the creation of a
// missing plan, run under the cache's own mutex, and a plan, once made, stays where it
// is (the map is node-based and plans are never erased except by clear()), so a
// reference to it stays valid after the lock is released; executing a oneDNN primitive
// from several threads at once is safe. What the lock does not cover is the state a
// kernel keeps in its plans besides the primitive (packed weights, backward primitives
// made on first use): a kernel instance is used by one thread at a time, while
// different instances (two models, two layers) may run on different threads at once,
// sharing the function-static caches (element-wise ops, reorders) safely.

#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "dnnl_context.h"
#include "thread_count.h"

namespace resnet::backend::detail {

class PlanKey {
 public:
  PlanKey() = default;
  template <typename... Parts>
  explicit PlanKey(const Parts&... parts) {
    (add(parts), ...);
  }

  PlanKey& add(const Shape& dims);
  PlanKey& add(Layout layout) { return tagged(Part::layout, static_cast<int64_t>(layout)); }
  PlanKey& add(DType type) { return tagged(Part::dtype, static_cast<int64_t>(type)); }
  PlanKey& add(memory::data_type type) {
    return tagged(Part::dnnl_type, static_cast<int64_t>(type));
  }
  PlanKey& add(bool flag) { return tagged(Part::flag, flag ? 1 : 0); }
  PlanKey& add(int64_t value) { return tagged(Part::value, value); }
  // Everything that tells two descriptors apart: dims, element type, format, and for
  // blocked formats the strides, blocks, padding and offset (a zero descriptor too).
  PlanKey& add(const memory::desc& desc);

  bool operator==(const PlanKey& other) const { return parts_ == other.parts_; }
  size_t hash() const;

 private:
  enum class Part : int64_t { dims = 1, layout, dtype, dnnl_type, flag, value, desc };
  PlanKey& tagged(Part part, int64_t value) {
    parts_.push_back(static_cast<int64_t>(part));
    parts_.push_back(value);
    return *this;
  }
  std::vector<int64_t> parts_;
};

struct PlanKeyHash {
  size_t operator()(const PlanKey& key) const { return key.hash(); }
};

template <typename Plan>
class PlanCache {
 public:
  // The plan under `key` for the calling thread's thread count, made by `make()` (which
  // returns a Plan) on first use. oneDNN fixes a primitive's thread count when it is
  // created (as its own primitive cache does, the count is part of the key), so after
  // set_num_threads the plans are made again, for the new count. `make` runs under the
  // lock and must not use this cache.
  template <typename Make>
  Plan& get(PlanKey key, Make&& make) {
    key.add(static_cast<int64_t>(adopt_thread_count()));
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = plans_.find(key);
    if (it == plans_.end()) it = plans_.emplace(key, make()).first;
    return it->second;
  }
  // Calls fn(plan) for every plan, under the lock; fn must not use this cache.
  template <typename Fn>
  void for_each(Fn&& fn) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& entry : plans_) fn(entry.second);
  }
  // Drops every plan: references handed out before are invalid after.
  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    plans_.clear();
  }

 private:
  std::mutex mutex_;
  std::unordered_map<PlanKey, Plan, PlanKeyHash> plans_;
};

}  // namespace resnet::backend::detail
