#pragma once
// Private to src/backend/: how a computation takes up the process-wide thread count
// (resnet/backend/threads.h) on the thread it runs on.
//
// Where it is called: oneDNN fixes a kernel's thread count when the primitive is
// created (its jitted convolutions split their work for omp_get_max_threads() threads
// then) and reads it again when simpler primitives run, so both creation and execution
// must see the count. Nothing of oneDNN is created or run without the engine, so
// detail::engine() adopts the count: one hook covers every primitive, whichever kernel
// makes or runs it. PlanCache::get adopts it too, as it keys plans by the count. The
// backend's own `#pragma omp parallel` loops do not touch the engine; each calls
// adopt_thread_count() first (pooling, shortcut padding, batch norm, gradient sums).

namespace resnet::backend::detail {

// Sets the calling thread's OpenMP count to the process-wide one when set_num_threads
// was called since this thread last adopted it (an atomic load and a thread-local
// compare otherwise), and returns the calling thread's count (omp_get_max_threads()).
int adopt_thread_count();

}  // namespace resnet::backend::detail
