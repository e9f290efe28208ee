#!/usr/bin/env bash
# ThreadSanitizer check of the code that runs threads: builds the library with
# -fsanitize=thread into build-tsan/, links tools/tsan/concurrent_use.cpp against it and
# runs it, then builds `resnet` (the inference server) and the server's tests the same
# way and runs them: every request the tests send is served by the instrumented server
# (HTTP threads, batch workers, metrics, shutdown). Fails on any ThreadSanitizer report. OpenMP runs one thread per region here:
# libgomp is not instrumented, and its own synchronization would be reported as races.
# Usage: scripts/tsan.sh
set -euo pipefail
cd "$(dirname "$0")/.."
build=build-tsan
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF \
  -DRESNET_BUILD_BENCHMARKS=OFF -DCMAKE_CXX_FLAGS=-fsanitize=thread \
  -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread >/dev/null
cmake --build "$build" -j"$(nproc)" --target resnet_lib
c++ -std=c++20 -O1 -g -fsanitize=thread -fopenmp -Iinclude tools/tsan/concurrent_use.cpp \
  "$build/libresnet.a" -ldnnl -lonnx_proto -lprotobuf -ljpeg -lpng -lz -lcrypto \
  -lpthread -o "$build/concurrent_use"
OMP_NUM_THREADS=1 TSAN_OPTIONS="halt_on_error=1 exitcode=66 suppressions=$PWD/tools/tsan/suppressions.txt" \
  "$build/concurrent_use"
cmake --build "$build" -j"$(nproc)" --target resnet resnet_serve_tests
OMP_NUM_THREADS=1 TSAN_OPTIONS="halt_on_error=1 exitcode=66 suppressions=$PWD/tools/tsan/suppressions.txt" \
  "$build/resnet_serve_tests"
