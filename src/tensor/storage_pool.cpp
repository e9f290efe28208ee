#include "resnet/tensor/storage_pool.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "resnet/core/error.h"

namespace resnet::detail {

namespace {

size_t page_rounded(size_t bytes) {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return (std::max<size_t>(bytes, 1) + page - 1) / page * page;
}

// Segments are mapped in whole multiples of this, so that a segment made for one tensor
// has room to be split for others, and (where transparent huge pages are on) is backed
// by 2 MiB pages: 512 times fewer first-touch faults.
constexpr size_t kSegmentGranule = size_t{2} << 20;

class StoragePool {
 public:
  PooledBlock acquire(size_t bytes) {
    const size_t size = page_rounded(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    ++clock_;
    Block* b = take_best_fit(size);
    if (b == nullptr) b = map_segment(size, bytes);
    split(b, size);
    b->free = false;
    in_use_.emplace(b->data, b);
    live_ += size;
    high_water_ = std::max(high_water_, live_);
    const bool zeroed = b->fresh;
    b->fresh = false;  // whoever gets it next gets it written
    return {b->data, zeroed};
  }

  void release(void* data, size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = in_use_.find(data);
    RESNET_CHECK(it != in_use_.end() && it->second->size == page_rounded(bytes),
                 "tensor storage: releasing a block the pool did not hand out");
    Block* b = it->second;
    in_use_.erase(it);
    live_ -= b->size;
    b->free = true;
    b->segment->last_use = ++clock_;
    if (b->next != nullptr && b->next->free) b = merge(b, b->next);
    if (b->prev != nullptr && b->prev->free) b = merge(b->prev, b);
    free_.emplace(Key{b->size, b->data}, b);
  }

  size_t live() {
    std::lock_guard<std::mutex> lock(mutex_);
    return live_;
  }
  size_t cached() {
    std::lock_guard<std::mutex> lock(mutex_);
    return mapped_ - live_;
  }
  size_t high_water() {
    std::lock_guard<std::mutex> lock(mutex_);
    return high_water_;
  }

 private:
  struct Segment;
  // A run of pages within a segment, free or handed out; neighbours in address order.
  struct Block {
    char* data = nullptr;
    size_t size = 0;
    bool free = true;
    bool fresh = true;  // never handed out since mapped: its pages read as zero
    Block* prev = nullptr;
    Block* next = nullptr;
    Segment* segment = nullptr;
  };
  struct Segment {
    char* base = nullptr;
    size_t size = 0;
    uint64_t last_use = 0;
    Block* first = nullptr;  // the block at `base`
  };
  using Key = std::pair<size_t, char*>;  // free blocks by size, then address: best fit

  // The smallest free block of at least `size` (the lowest address among equals).
  Block* take_best_fit(size_t size) {
    auto it = free_.lower_bound(Key{size, nullptr});
    if (it == free_.end()) return nullptr;
    Block* b = it->second;
    free_.erase(it);
    return b;
  }

  // A block record: a spare one (left by a merge) or a new one.
  Block* new_block() {
    if (!spare_.empty()) {
      Block* b = spare_.back();
      spare_.pop_back();
      *b = Block{};
      return b;
    }
    blocks_.push_back(std::make_unique<Block>());
    return blocks_.back().get();
  }

  // Cuts `b` to `size`, the rest becoming a free block after it.
  void split(Block* b, size_t size) {
    if (b->size == size) return;
    Block* rest = new_block();
    rest->data = b->data + size;
    rest->size = b->size - size;
    rest->fresh = b->fresh;
    rest->segment = b->segment;
    rest->prev = b;
    rest->next = b->next;
    if (b->next != nullptr) b->next->prev = rest;
    b->next = rest;
    b->size = size;
    free_.emplace(Key{rest->size, rest->data}, rest);
  }

  // Joins free neighbours `a` and `b` (b right after a) into `a`; `b`'s record becomes a
  // spare. Whichever of them was in the free index leaves it.
  Block* merge(Block* a, Block* b) {
    free_.erase(Key{a->size, a->data});
    free_.erase(Key{b->size, b->data});
    a->size += b->size;
    a->fresh = a->fresh && b->fresh;
    a->next = b->next;
    if (b->next != nullptr) b->next->prev = a;
    spare_.push_back(b);
    return a;
  }

  // How far mapped memory may exceed the live high-water mark before a miss gives back
  // wholly free segments: a training step's sizes change from stage to stage and from
  // forward to backward, and best fit with splitting and merging serves most of them from
  // freed blocks, but not every pattern packs into the live peak exactly.
  size_t footprint_limit() const {
    return std::min(2 * high_water_, high_water_ + high_water_ / 16 + (size_t{32} << 20));
  }

  // A new segment for a request of `size` that nothing free can hold, after unmapping
  // wholly free segments (least recently used first) that would take the footprint past
  // the limit.
  Block* map_segment(size_t size, size_t bytes) {
    const size_t segment_size = (size + kSegmentGranule - 1) / kSegmentGranule * kSegmentGranule;
    const size_t limit = std::max(footprint_limit(), live_ + segment_size);
    while (mapped_ + segment_size > limit && unmap_least_recent_free_segment()) {
    }
    void* p =
        mmap(nullptr, segment_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      // Out of memory or address space: give every free segment back and try once more.
      while (unmap_least_recent_free_segment()) {
      }
      p = mmap(nullptr, segment_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      RESNET_CHECK(p != MAP_FAILED,
                   "tensor: cannot allocate " << bytes << " bytes (out of memory)");
    }
    madvise(p, segment_size, MADV_HUGEPAGE);  // a hint; refused where huge pages are off
    auto segment = std::make_unique<Segment>();
    segment->base = static_cast<char*>(p);
    segment->size = segment_size;
    segment->last_use = clock_;
    Block* b = new_block();
    b->data = segment->base;
    b->size = segment_size;
    b->segment = segment.get();
    segment->first = b;
    segments_.push_back(std::move(segment));
    mapped_ += segment_size;
    return b;
  }

  bool unmap_least_recent_free_segment() {
    auto oldest = segments_.end();
    for (auto it = segments_.begin(); it != segments_.end(); ++it) {
      const Block* first = (*it)->first;
      const bool wholly_free = first->free && first->size == (*it)->size;
      if (wholly_free && (oldest == segments_.end() || (*it)->last_use < (*oldest)->last_use))
        oldest = it;
    }
    if (oldest == segments_.end()) return false;
    Block* first = (*oldest)->first;
    free_.erase(Key{first->size, first->data});
    spare_.push_back(first);
    munmap((*oldest)->base, (*oldest)->size);
    mapped_ -= (*oldest)->size;
    segments_.erase(oldest);
    return true;
  }

  std::mutex mutex_;
  std::vector<std::unique_ptr<Segment>> segments_;
  std::map<Key, Block*> free_;
  std::unordered_map<void*, Block*> in_use_;
  std::vector<std::unique_ptr<Block>> blocks_;  // every block record
  std::vector<Block*> spare_;                   // records not describing any pages now
  size_t live_ = 0, mapped_ = 0, high_water_ = 0;
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
