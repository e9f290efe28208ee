#!/usr/bin/env bash
# The library as its users get it: installs BUILD_DIR into a temporary prefix, then builds
# examples/ out of tree against that prefix and runs each program on tiny inputs:
#   - find_package(resnet): the three examples on libresnet.so, and int8_onnx again on
#     libresnet.a (resnet_USE_STATIC_LIBS, whose private dependencies the config finds);
#   - pkg-config: examples/Makefile, classify on libresnet.so and on libresnet.a;
#   - README.md's first "Library" code block is examples/classify.cpp, byte for byte;
#   - the installed headers hold no test oracle and compile together in one unit;
#   - libresnet.so exports nothing outside the resnet:: namespace;
#   - the installed `resnet` works (--version, run, export, predict, eval), and classify
#     prints what `resnet predict` prints.
# Usage: scripts/test_examples.sh BUILD_DIR   (ctest runs it as examples_against_installed_package)
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
step() { echo "== $*"; }
# A library built with the sanitizers (RESNET_SANITIZE) needs its programs linked with the
# same runtimes; CMake and examples/Makefile take these flags from the environment.
if grep -q "^RESNET_SANITIZE:BOOL=ON" "$build/CMakeCache.txt"; then
  export CXXFLAGS="-O1 -fsanitize=address,undefined" LDFLAGS="-fsanitize=address,undefined"
fi

step "install into a temporary prefix"
prefix="$tmp/prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
pc="$(find "$prefix" -name resnet.pc)"
libdir="$(cd "$(dirname "$pc")/.." && pwd)"
resnet="$prefix/bin/resnet"

step "README's first Library code block is examples/classify.cpp"
awk '/^## Library/ { in_section = 1 }
     in_section && /^```cpp$/ { in_block = 1; next }
     in_block && /^```$/ { exit }
     in_block { print }' "$src/README.md" > "$tmp/readme_block.cpp"
diff -u "$src/examples/classify.cpp" "$tmp/readme_block.cpp"

step "installed headers: no test oracle, all compile together"
test ! -e "$prefix/include/resnet/ref"
test ! -e "$prefix/include/resnet/infer/reference_run.h"
(cd "$prefix/include" && find resnet -name '*.h' | sort | sed 's/.*/#include "&"/') \
  > "$tmp/all_headers.cpp"
c++ -std=c++20 -fsyntax-only -I"$prefix/include" "$tmp/all_headers.cpp"
if nm -C --defined-only "$libdir/libresnet.a" 2>/dev/null | grep -q "resnet::ref::"; then
  echo "libresnet.a holds the test oracle (resnet::ref)" >&2
  exit 1
fi

step "libresnet.so exports the resnet:: namespace only (cmake/resnet.map)"
nm -D --defined-only -C "$libdir/libresnet.so" | awk '{ $1 = $2 = ""; sub(/^ +/, ""); print }' \
  | grep -vE '^((typeinfo( name)?|vtable|VTT|guard variable) for |(non-)?virtual thunk to )?resnet::' \
  > "$tmp/foreign_symbols.txt" || true
if [ -s "$tmp/foreign_symbols.txt" ]; then
  echo "libresnet.so exports symbols outside resnet::, e.g.:" >&2
  head -n 5 "$tmp/foreign_symbols.txt" >&2
  exit 1
fi

step "the installed command line"
"$resnet" --version | grep -qx "resnet [0-9]*\.[0-9]*\.[0-9]*"
"$resnet" run --model resnet20 --input "$src/tests/fixtures/interop/resnet20_input.npy" \
  --output "$tmp/y.npy" --state-out "$tmp/resnet20.safetensors" >/dev/null
"$resnet" export --model resnet20 --weights "$tmp/resnet20.safetensors" \
  --onnx "$tmp/resnet20.onnx" >/dev/null
image="$src/tests/fixtures/interop/preprocess/landscape_rgb.png"
portrait="$src/tests/fixtures/interop/preprocess/portrait_rgba.png"

step "find_package(resnet), libresnet.so"
cmake -S "$src/examples" -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$tmp/cmake" -j"$(nproc)" >/dev/null
readelf -d "$tmp/cmake/classify" | grep -q "NEEDED.*libresnet\.so"
"$tmp/cmake/classify" resnet20 "$tmp/resnet20.safetensors" "$image" | tee "$tmp/classify.txt"
test "$(wc -l < "$tmp/classify.txt")" -eq 5
# The same model and image under `resnet predict`, which runs the same compiled f32 graph:
# the same five classes with the same probabilities.
"$resnet" predict --model resnet20 --weights "$tmp/resnet20.safetensors" "$image" \
  | awk 'NR > 1 { print $1 "  " $2 }' > "$tmp/predict.txt"
diff "$tmp/predict.txt" "$tmp/classify.txt"
"$tmp/cmake/int8_onnx" "$tmp/resnet20.onnx" "$image" "$portrait" | tee "$tmp/int8.txt"
test "$(grep -c '^top-1 f32' "$tmp/int8.txt")" -eq 2
"$tmp/cmake/train_fashion_mnist" 1 "$tmp/run" 3 > "$tmp/train.txt"
tail -n 2 "$tmp/train.txt"
test -s "$tmp/run/last.safetensors" && test -s "$tmp/run/resnet20.onnx"
"$resnet" eval --checkpoint "$tmp/run/last.safetensors" --data fashion-mnist --json >/dev/null

step "find_package(resnet) with resnet_USE_STATIC_LIBS, libresnet.a"
cmake -S "$src/examples" -B "$tmp/cmake-static" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=Release -Dresnet_USE_STATIC_LIBS=ON >/dev/null
cmake --build "$tmp/cmake-static" --target int8_onnx >/dev/null
! readelf -d "$tmp/cmake-static/int8_onnx" | grep -q "libresnet"
"$tmp/cmake-static/int8_onnx" "$tmp/resnet20.onnx" "$image" | grep -q '^top-1 f32'

step "pkg-config: examples/Makefile"
mkdir "$tmp/pkg-config"
cp "$src/examples/classify.cpp" "$src/examples/Makefile" "$tmp/pkg-config/"
PKG_CONFIG_PATH="$libdir/pkgconfig" make -s -C "$tmp/pkg-config" >/dev/null
! readelf -d "$tmp/pkg-config/classify-static" | grep -q "libresnet"
for program in classify classify-static; do
  "$tmp/pkg-config/$program" resnet20 "$tmp/resnet20.safetensors" "$image" > "$tmp/$program.txt"
  diff "$tmp/classify.txt" "$tmp/$program.txt"
done
echo "examples: all passed"
