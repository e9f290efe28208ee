#pragma once
// Process-wide settings a program using the library may make once, at start-up.

namespace resnet {

// The number of threads oneDNN's kernels and the library's own loops use (OpenMP), for
// the whole process: it also holds for models run on threads started before or after
// the call. The default is one per core (or OMP_NUM_THREADS). `threads` must be
// positive; otherwise resnet::Error.
void set_num_threads(int threads);
// The number of threads the library computes with on the calling thread.
int num_threads();

// Tunes glibc's allocator for training and inference: freed memory stays in the heap
// instead of being unmapped and faulted in again at the next step (mmap threshold 256 MiB,
// trim threshold 1 GiB). Tensors of 64 KiB and more come from the library's own block
// pool either way; this serves oneDNN's own temporaries. It changes
// malloc for the whole process, so the library never calls it by itself: the `resnet`
// command line calls it first thing, and a program that trains or serves in a loop
// should too. Safe to call more than once.
void configure_allocator();

}  // namespace resnet
