#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs the main job: the seed's block, printed as PyTorch
# prints it, then timed forward and backward passes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
build/resnet summary block:64,128,2
build/resnet bench --model block:64,128,2 --mode infer --batch 32 --size 56 --iters 10
build/resnet bench --model block:64,128,2 --mode train --batch 32 --size 56 --iters 5
