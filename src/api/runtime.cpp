#include "resnet/api/runtime.h"

#include <malloc.h>

#include "resnet/backend/threads.h"
#include "resnet/core/error.h"

namespace resnet {

void set_num_threads(int threads) {
  RESNET_CHECK(threads >= 1, "set_num_threads: expected a positive count, got " << threads);
  backend::set_num_threads(threads);
}

int num_threads() {
  return backend::num_threads();
}

// By default glibc serves blocks over 128 KiB (up to 32 MiB, adaptively) with mmap and
// unmaps them on free, so each training step faulted its buffers in afresh: when tensors
// still came from malloc, these settings took the resnet20 training benchmark (batch
// 128, 1x28x28) from 1100 to 1650-1740 images/s. Tensors now come from the storage pool
// (resnet/tensor/storage_pool.h); this still serves oneDNN's own buffers (reorder and
// weight-gradient temporaries).
void configure_allocator() {
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

}  // namespace resnet
