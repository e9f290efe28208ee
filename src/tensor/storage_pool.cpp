#include "resnet/tensor/storage_pool.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "resnet/core/error.h"

namespace resnet::detail {

namespace {

size_t page_rounded(size_t bytes) {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return (std::max<size_t>(bytes, 1) + page - 1) / page * page;
}

class StoragePool {
 public:
  PooledBlock acquire(size_t bytes) {
    const size_t size = page_rounded(bytes);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      live_ += size;
      high_water_ = std::max(high_water_, live_);
      SizeClass& wanted = classes_[size];
      wanted.last_use = ++clock_;
      if (!wanted.blocks.empty()) {
        void* p = wanted.blocks.back();
        wanted.blocks.pop_back();
        cached_ -= size;
        return {p, false};
      }
      void* reshaped = live_ + cached_ > footprint_limit() ? reshape_cached(size) : nullptr;
      evict_for_miss(size);
      if (reshaped != nullptr) return {reshaped, false};
    }
    void* p = map(size);
    if (p == MAP_FAILED) {
      // Out of memory or address space: give every cached block back and try once more.
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto& [block_size, c] : classes_) {
        for (void* b : c.blocks) munmap(b, block_size);
        cached_ -= c.blocks.size() * block_size;
        c.blocks.clear();
      }
      p = map(size);
      if (p == MAP_FAILED) {
        live_ -= size;
        RESNET_FAIL("tensor: cannot allocate " << bytes << " bytes");
      }
    }
    return {p, true};
  }

  void release(void* data, size_t bytes) {
    const size_t size = page_rounded(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    classes_[size].blocks.push_back(data);
    live_ -= size;
    cached_ += size;
  }

  size_t live() {
    std::lock_guard<std::mutex> lock(mutex_);
    return live_;
  }
  size_t cached() {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
  }
  size_t high_water() {
    std::lock_guard<std::mutex> lock(mutex_);
    return high_water_;
  }

 private:
  static void* map(size_t size) {
    return mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  }

  struct SizeClass {
    std::vector<void*> blocks;  // cached, free
    uint64_t last_use = 0;      // clock_ at the last request of this size
  };

  // How far live plus cached memory may exceed the live high-water mark before a miss
  // reshapes a cached block instead of mapping new pages. The slack matters: with
  // exact-size reuse a training step needs more than its live peak to run without misses
  // (ResNet-20, batch 128: 180 MB for a 150 MB live peak), and a tighter limit unmaps and
  // faults in blocks every step (86 ms a step instead of 66). But cached blocks of one
  // size can be many: a ResNet-50 step at 224 pixels frees the deep stages' small
  // activations while its backward asks for the early stages' large gradients, and
  // without reshaping it grew a 2950 MiB footprint over a 2402 MiB live peak.
  size_t footprint_limit() const {
    return std::min(2 * high_water_, high_water_ + high_water_ / 16 + (size_t{32} << 20));
  }

  // Takes the cached block nearest in size to `size` (the smallest larger one, else the
  // largest) and remaps it to `size`: its pages stay resident and only the difference is
  // faulted in or given back. Null when nothing is cached.
  void* reshape_cached(size_t size) {
    SizeClass* best = nullptr;
    size_t best_size = 0;
    for (auto& [block_size, c] : classes_) {
      if (c.blocks.empty()) continue;
      const bool larger = block_size >= size, best_larger = best_size >= size;
      if (best == nullptr || (larger && (!best_larger || block_size < best_size)) ||
          (!larger && !best_larger && block_size > best_size)) {
        best = &c;
        best_size = block_size;
      }
    }
    if (best == nullptr) return nullptr;
    void* old = best->blocks.back();
    void* p = mremap(old, best_size, size, MREMAP_MAYMOVE);
    if (p == MAP_FAILED) return nullptr;
    best->blocks.pop_back();
    cached_ -= best_size;
    return p;
  }

  // Unmaps cached blocks, least recently requested sizes first, until live plus cached
  // memory is within the limit.
  void evict_for_miss(size_t wanted) {
    while (live_ + cached_ > footprint_limit()) {
      SizeClass* oldest = nullptr;
      size_t oldest_size = 0;
      for (auto& [size, c] : classes_) {
        if (size == wanted || c.blocks.empty()) continue;
        if (oldest == nullptr || c.last_use < oldest->last_use) {
          oldest = &c;
          oldest_size = size;
        }
      }
      if (oldest == nullptr) return;
      while (!oldest->blocks.empty() && live_ + cached_ > footprint_limit()) {
        munmap(oldest->blocks.back(), oldest_size);
        oldest->blocks.pop_back();
        cached_ -= oldest_size;
      }
    }
  }

  std::mutex mutex_;
  std::unordered_map<size_t, SizeClass> classes_;
  size_t live_ = 0, cached_ = 0, high_water_ = 0;
  uint64_t clock_ = 0;
};

// Never destroyed: tensors with static storage duration may release into it at exit.
StoragePool& pool() {
  static StoragePool* instance = new StoragePool;
  return *instance;
}

}  // namespace

PooledBlock acquire_pooled_storage(size_t bytes) {
  return pool().acquire(bytes);
}

void release_pooled_storage(void* data, size_t bytes) {
  pool().release(data, bytes);
}

size_t pooled_storage_live_bytes() {
  return pool().live();
}

size_t pooled_storage_cached_bytes() {
  return pool().cached();
}

size_t pooled_storage_high_water_bytes() {
  return pool().high_water();
}

}  // namespace resnet::detail
