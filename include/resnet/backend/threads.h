#pragma once
// The number of threads the library computes with, for the whole process: oneDNN's
// kernels (built on the OpenMP runtime) and the backend's own OpenMP loops.
//
// OpenMP keeps the count per thread (omp_set_num_threads sets the calling thread's
// only), so a count set on one thread would not reach a model run on another: a
// server's worker, a trainer's thread. The count set here is kept process-wide, and
// each backend computation adopts it on the thread it runs on (src/backend/thread_count.h).

namespace resnet::backend {

// Sets the count for every thread, present and future. `threads` must be positive;
// otherwise resnet::Error.
void set_num_threads(int threads);
// The count the calling thread computes with: the one set, or until one is set,
// OpenMP's default for this thread (one per core, or OMP_NUM_THREADS).
int num_threads();

}  // namespace resnet::backend
