#!/usr/bin/env bash
# The seed's claim on Fashion-MNIST: plain networks get worse with depth, residual ones do
# not (He et al. 2015, figure 6). Trains plain and residual networks of 20, 56 and 110
# layers with one budget and one schedule, recording every conv weight's gradient norm over
# the first steps, then draws runs/degradation/error.svg and runs/degradation/grad_norms.svg
# and prints the table of final errors.
#   EPOCHS (default 2), BATCH (default 32): the budget; 2 epochs of batch 32 are 3750 steps.
#   The learning rate is 0.05 after 200 warm-up steps, divided by 10 at 50% and 75% of the
#   steps (the paper's shape, at the budget's length).
#   MODELS (default all six) picks networks; extra arguments go to every `resnet train`
#   (e.g. --precision bf16).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
epochs="${EPOCHS:-2}"
batch="${BATCH:-32}"
models="${MODELS:-plain20 resnet20 plain56 resnet56 plain110 resnet110}"
out=runs/degradation
mkdir -p "$out"
steps=$((epochs * ((60000 + batch - 1) / batch)))
schedule="multistep:$((steps / 2)),$((steps * 3 / 4))"
for model in $models; do
  build/resnet train --model "$model" --epochs "$epochs" --batch "$batch" --lr 0.05 \
    --warmup 200 --schedule "$schedule" --crop-padding 0 --flip false --grad-norm-steps 101 \
    --out "$out/$model" "$@" | tail -n "$((epochs + 1))"
done
labels=()
for model in $models; do
  label="${model/plain/plain-}"
  labels+=("$out/$model=${label/resnet/ResNet-}")
done
build/resnet plot --runs "${labels[@]}" --out "$out/error.svg"
grad_runs=()
for model in $models; do
  case "$model" in *110) grad_runs+=("$out/$model") ;; esac
done
[ "${#grad_runs[@]}" -gt 0 ] || for model in $models; do grad_runs+=("$out/$model"); done
build/resnet plot --grad-norms "${grad_runs[@]}" --steps 0,10,100 --out "$out/grad_norms.svg"
echo "| network | training error (last epoch) | test error |"
echo "| --- | --- | --- |"
for model in $models; do
  printf '| %s | %s | %s |\n' "$model" \
    "$(tail -n 1 "$out/$model/metrics.csv" | awk -F, '{printf "%.2f%%", 100 * (1 - $3)}')" \
    "$(tail -n 1 "$out/$model/metrics.csv" | awk -F, '{printf "%.2f%%", 100 * (1 - $5)}')"
done
echo "figures: $out/error.svg $out/grad_norms.svg"
