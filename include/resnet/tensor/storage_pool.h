#pragma once
// Where large tensor storage comes from: one process-wide pool shared by training
// (activations, gradients) and compiled models (their activations), so that memory a
// frozen prefix or an evaluation frees serves the training step next to it.
//
// Why: a training step allocates and frees the same sequence of activation and gradient
// buffers every step. From malloc, that sequence either faults every page in again each
// step (blocks above the mmap threshold) or fragments the heap (below it).
//
// How: segments are mapped in multiples of 2 MiB (transparent huge pages where the
// system allows); a request takes the best-fitting free block, splitting off the rest,
// and freed neighbours merge again. Pages stay resident between steps, so a step after
// the first faults nothing in. Wholly free segments are unmapped (least recently used
// first) when a new segment would take the footprint past the largest live total seen
// plus a slack, so changing shapes (a last, shorter batch; evaluation between epochs)
// do not make it grow far past the live peak. Locked: tensors are made and freed on several threads
// at once.

#include <cstddef>

namespace resnet::detail {

// Blocks below this size come from malloc: the cache is for activations, not for
// per-channel vectors.
inline constexpr size_t kPooledStorageMinBytes = size_t{1} << 16;

struct PooledBlock {
  void* data = nullptr;
  bool zeroed = false;  // fresh pages from the kernel, known to be zero
};

// A block of at least `bytes` (rounded up to whole pages); throws resnet::Error when the
// system has no memory left.
PooledBlock acquire_pooled_storage(size_t bytes);
// Returns a block from acquire_pooled_storage with the same `bytes`.
void release_pooled_storage(void* data, size_t bytes);

// Bytes handed out and not yet released, bytes cached for reuse, and the largest live
// total so far (for tests).
size_t pooled_storage_live_bytes();
size_t pooled_storage_cached_bytes();
size_t pooled_storage_high_water_bytes();

}  // namespace resnet::detail
