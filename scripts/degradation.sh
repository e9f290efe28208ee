#!/usr/bin/env bash
# The seed's claim on Fashion-MNIST: plain networks get worse with depth, residual ones do
# not (He et al. 2015, figure 6). Trains plain20, plain56, resnet20 and resnet56 with the
# same budget, recording every conv weight's gradient norm over the first steps, then
# draws runs/degradation/error.svg and runs/degradation/grad_norms.svg.
#   EPOCHS (default 3) sets the budget; extra arguments go to every `resnet train`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
epochs="${EPOCHS:-3}"
out=runs/degradation
mkdir -p "$out"
for model in plain20 resnet20 plain56 resnet56; do
  build/resnet train --model "$model" --epochs "$epochs" --schedule multistep:1000000 --lr 0.05 \
    --crop-padding 0 --flip false --grad-norm-steps 101 --out "$out/$model" "$@" | tail -n "$((epochs + 1))"
done
build/resnet plot --runs "$out/plain20=plain-20" "$out/plain56=plain-56" "$out/resnet20=ResNet-20" \
  "$out/resnet56=ResNet-56" --out "$out/error.svg"
build/resnet plot --grad-norms "$out/plain56=plain-56" "$out/resnet56=ResNet-56" --steps 0,10,100 \
  --out "$out/grad_norms.svg"
for model in plain20 resnet20 plain56 resnet56; do
  printf '%-9s final train error %s, test error %s\n' "$model" \
    "$(tail -n 1 "$out/$model/metrics.csv" | awk -F, '{printf "%.2f%%", 100 * (1 - $3)}')" \
    "$(tail -n 1 "$out/$model/metrics.csv" | awk -F, '{printf "%.2f%%", 100 * (1 - $5)}')"
done
echo "figures: $out/error.svg $out/grad_norms.svg"
