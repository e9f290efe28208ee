#!/usr/bin/env bash
# Installs the Debian packages the build, the tests and the main job need (only the
# missing ones), then configures and builds into build/ (or $BUILD_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake libdnnl-dev libcli11-dev nlohmann-json3-dev libgtest-dev libgmock-dev
          libbenchmark-dev zlib1g-dev libpng-dev libjpeg-dev libprotobuf-dev libonnx-dev
          python3-onnx libonnx-testdata dataset-fashion-mnist pkg-config file libssl-dev
          libcpp-httplib-dev openmpi-bin libopenmpi-dev)
# The ASan+UBSan pass (scripts/sanitize.sh) and the fuzz targets build with clang, its
# libFuzzer runtime and LLVM's OpenMP.
if [ "${RESNET_CI_SANITIZERS:-0}" = 1 ]; then
  packages+=(clang-14 libclang-rt-14-dev libomp-14-dev)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

build_dir="${BUILD_DIR:-build}"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" ${CMAKE_ARGS:-} >/dev/null
cmake --build "$build_dir" -j"$(nproc)"
