#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs the main job: trains a CIFAR-style ResNet-20 on
# Fashion-MNIST (Debian's dataset-fashion-mnist) for 5 epochs, then evaluates its best
# checkpoint. Output: runs/resnet20-fashion-mnist/ (metrics.csv, curves.svg, checkpoints).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
build/resnet train "$@"
out=runs/resnet20-fashion-mnist
for arg in "$@"; do [ "${prev:-}" = "--out" ] && out="$arg"; prev="$arg"; done
build/resnet eval --checkpoint "$out/best.safetensors" --data fashion-mnist
