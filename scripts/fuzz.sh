#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang, ASan+UBSan) into build-fuzz/ if needed and
# runs one of them for SECONDS, on its corpus in build-fuzz/corpus/TARGET (seeded by
# fuzz/make_seeds.py from the test fixtures the first time; what the fuzzer finds is kept
# there). Crashes, leaks, timeouts and out-of-memory inputs are written to
# build-fuzz/artifacts/TARGET/ and end the run with a non-zero status.
# Usage: scripts/fuzz.sh TARGET SECONDS [extra libFuzzer flags]
#        scripts/fuzz.sh list     the targets
#        scripts/fuzz.sh build    configures build-fuzz/ and builds every target
# Targets: npy safetensors idx idx_gzip cifar image onnx resume label_file
set -euo pipefail
cd "$(dirname "$0")/.."
targets=(npy safetensors idx idx_gzip cifar image onnx resume label_file)
if [ "${1:-}" = list ]; then
  echo "${targets[*]}"
  exit 0
fi

# clang 14 pairs with Debian's libomp-14-dev (OpenMP) and libclang-rt-14-dev (libFuzzer).
# The test suite is configured too (not built here): scripts/sanitize.sh builds and runs it
# from this same instrumented build.
build=${FUZZ_BUILD_DIR:-build-fuzz}
configure() {
  [ -f "$build/CMakeCache.txt" ] && return
  local cxx=${FUZZ_CXX:-$(command -v clang++-14 || command -v clang++)}
  local launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S . -B "$build" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" \
    -DRESNET_FUZZ=ON -DRESNET_BUILD_TESTS=ON -DRESNET_BUILD_BENCHMARKS=OFF -DRESNET_INSTALL=OFF \
    ${FUZZ_CMAKE_ARGS:-} >/dev/null
}
if [ "${1:-}" = build ]; then
  configure
  cmake --build "$build" -j"${FUZZ_JOBS:-$(nproc)}" --target fuzz_all
  exit 0
fi
[ $# -ge 2 ] || { echo "usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer flags]" >&2; exit 2; }
target=$1 seconds=$2
shift 2
[[ " ${targets[*]} " == *" $target "* ]] || { echo "fuzz.sh: unknown target '$target' (expected one of: ${targets[*]})" >&2; exit 2; }
configure
cmake --build "$build" -j"${FUZZ_JOBS:-$(nproc)}" --target "fuzz_$target" >/dev/null

corpus="$build/corpus/$target"
# Targets started at once take turns writing the seeds (make_seeds.py refuses a folder
# that exists, and one run must not copy seeds another is still writing).
(
  flock 9
  if [ ! -d "$corpus" ]; then
    rm -rf "$build/seeds"
    python3 fuzz/make_seeds.py "$build/seeds"
    mkdir -p "$build/corpus"
    cp -r "$build/seeds/$target" "$corpus"
  fi
) 9>"$build/seeds.lock"
artifacts="$build/artifacts/$target"
mkdir -p "$artifacts"

# Largest input per target: a few times the largest seed, as OSS-Fuzz sizes them.
case $target in
  onnx | image | npy | safetensors | idx | idx_gzip) max_len=65536 ;;
  cifar) max_len=16384 ;;
  *) max_len=8192 ;;
esac
dict=()
case $target in
  npy) dict=(-dict=fuzz/dict/npy.dict) ;;
  safetensors) dict=(-dict=fuzz/dict/json_safetensors.dict) ;;
  image) dict=(-dict=fuzz/dict/image.dict) ;;
  onnx) dict=(-dict=fuzz/dict/onnx.dict) ;;
  resume) dict=(-dict=fuzz/dict/resume.dict) ;;
esac

# OSS-Fuzz's limits: 2.5 GB of memory, 25 s per input.
export OMP_NUM_THREADS=1 DNNL_VERBOSE=0
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
exec "$build/fuzz/fuzz_$target" "$corpus" "${dict[@]}" -max_len=$max_len -rss_limit_mb=2560 \
  -timeout=25 -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$artifacts/" "$@"
