#pragma once
// Where large tensor storage comes from: a cache of page-aligned blocks, keyed by exact
// size, that tensors return their storage to when they die.
//
// Why: a training step allocates and frees the same sequence of activation and gradient
// buffers every step. From malloc, that sequence either faults every page in again each
// step (blocks above the mmap threshold) or fragments the heap (below it): a ResNet-20
// step at batch 128 held 159 MB of live tensors but grew a 359 MB heap. Handing back the
// very block that was freed keeps pages resident and the footprint at the live peak.
//
// The footprint is bounded: on a miss that would take live plus cached memory past the
// largest live total seen so far plus a slack (1/16 of it and 32 MiB, at most as much
// again), a cached block of
// the nearest size is remapped to the size asked for (its pages stay resident), and
// cached blocks of the least recently requested sizes are unmapped until the footprint
// is within that bound. So neither the changing sizes within a step (a network's large
// early activations, then its small deep ones, then their gradients in reverse) nor
// changing shapes (a last, shorter batch; evaluation between epochs) make it grow far
// past the live peak.

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
