#!/usr/bin/env bash
# Time to 94% on Fashion-MNIST: runs `resnet train --recipe speedrun` for each seed given
# (default 1) and judges it against the budget, the wall time PyTorch 1.13 needs for
# 12 epochs (720,000 images) of ResNet-20 training steps on this machine, measured first
# with bench/compare_pytorch.py (5 alternating rounds, the median). Without PyTorch
# (python3-torch) the budget is skipped and said so. Benchmark alone: a 2-core machine
# running anything else measures that instead.
#   scripts/speedrun.sh 1 2 3
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
seeds=("${@:-1}")
budget=""
if /usr/bin/python3 -c "import torch" 2>/dev/null; then
  ips=$(/usr/bin/python3 bench/compare_pytorch.py --model resnet20 --mode train --batch 128 \
    --size 28 --in-channels 1 --dtypes bf16 --rounds 5 | tail -n 1 |
    /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['pytorch_images_per_s'])")
  budget=$(/usr/bin/python3 -c "print(round(720000 / $ips))")
  echo "budget: PyTorch trains ResNet-20 at $ips images/s; 720,000 images take $budget s"
else
  echo "budget: skipped (python3-torch is not installed)"
fi
for seed in "${seeds[@]}"; do
  out=runs/speedrun-seed$seed
  rm -rf "$out"
  start=$(date +%s.%N)
  build/resnet train --recipe speedrun --seed "$seed" --out "$out" | tail -n 2
  seconds=$(/usr/bin/python3 -c "print(round($(date +%s.%N) - $start, 1))")
  # The first epoch at or above 94%, and the last epoch's accuracy (metrics.csv).
  first=$(awk -F, 'NR > 1 && $5 >= 0.94 { print $1; exit }' "$out/metrics.csv")
  last=$(tail -n 1 "$out/metrics.csv" | cut -d, -f5)
  verdict="final test accuracy $last, first >= 94% at epoch ${first:-never}, $seconds s"
  if [ -n "$budget" ]; then
    verdict="$verdict of a $budget s budget"
  fi
  echo "seed $seed: $verdict"
done
