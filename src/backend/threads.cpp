#include "resnet/backend/threads.h"

#include <omp.h>

#include <atomic>
#include <cstdint>

#include "resnet/core/error.h"
#include "thread_count.h"

namespace resnet::backend {

namespace {

// The setting in one word, so that a reader never pairs one call's count with another
// call's generation: the generation (how many times a count was set) in the high half,
// the count in the low half. 0: never set, each thread keeps OpenMP's default.
std::atomic<uint64_t> setting{0};

uint64_t pack(uint64_t generation, int threads) {
  return generation << 32 | static_cast<uint32_t>(threads);
}

}  // namespace

void set_num_threads(int threads) {
  RESNET_CHECK(threads >= 1, "--threads: expected a positive count, got " << threads);
  uint64_t old = setting.load();
  while (!setting.compare_exchange_weak(old, pack((old >> 32) + 1, threads))) {
  }
  detail::adopt_thread_count();
}

int num_threads() {
  return detail::adopt_thread_count();
}

namespace detail {

int adopt_thread_count() {
  // The setting this thread last applied; a new generation is applied even with the
  // same count, which overrides a direct omp_set_num_threads made in between.
  thread_local uint64_t adopted = 0;
  const uint64_t now = setting.load(std::memory_order_relaxed);
  if (now != adopted) {
    adopted = now;
    omp_set_num_threads(static_cast<int>(now & 0xffffffffu));
  }
  return omp_get_max_threads();
}

}  // namespace detail

}  // namespace resnet::backend
