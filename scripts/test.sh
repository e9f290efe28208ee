#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs the whole test suite with ctest.
# SANITIZE=1 builds into build-asan/ with AddressSanitizer + UndefinedBehaviorSanitizer.
# RESNET_CI_SANITIZERS=1 then runs scripts/sanitize.sh: the clang ASan+UBSan build of the
# parser, data, training, compiler and CLI suites, and a 20-second run of each fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${SANITIZE:-0}" = 1 ]; then
  export BUILD_DIR=build-asan BUILD_TYPE=Debug CMAKE_ARGS="-DRESNET_SANITIZE=ON -DRESNET_BUILD_BENCHMARKS=OFF"
fi
scripts/setup.sh
build_dir="${BUILD_DIR:-build}"
ctest --test-dir "$build_dir" --output-on-failure -j"$(nproc)" --timeout 300
if [ "${RESNET_CI_SANITIZERS:-0}" = 1 ]; then
  scripts/sanitize.sh 20
fi
