#pragma once
// RESNET_HOT_LOOP marks our own memory-bound loops (batch norm, ReLU masks): the build
// targets baseline x86-64, and these get AVX-512 and AVX2 clones chosen at run time
// (bench_layers, BN+ReLU forward and backward on 128x16x28x28 blocked, one thread: 9.0 ms
// with scalar code, 1.4 ms with the clones).
//
// Not under ThreadSanitizer: the clones' ifunc resolver runs while the program is being
// loaded, before the TSan runtime is initialized, and crashes there.
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__SANITIZE_THREAD__)
#define RESNET_HOT_LOOP \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define RESNET_HOT_LOOP
#endif

// The same for function templates. Clang cannot yet clone templates ("multiversioned
// functions do not yet support function templates"): built with clang they compile for
// baseline x86-64 only (slower: the figure above's scalar case).
#if defined(__clang__)
#define RESNET_HOT_LOOP_TEMPLATE
#else
#define RESNET_HOT_LOOP_TEMPLATE RESNET_HOT_LOOP
#endif
