#!/bin/sh
# Does pretraining help? A resnet18 is trained from scratch on photos of Fashion-MNIST
# classes 0-4 at 112 pixels ("pretraining"), then fine-tuned from those weights on photos of
# the other five classes (5-9) with 100 training images per class, next to the same budget
# trained from scratch, for seeds 1 to 3. Prints each run's best and last test accuracies.
#
#   tools/transfer_experiment.sh WORKDIR [RESNET]
#
# RESNET is the resnet binary (default: build/resnet). Needs python3 with numpy and Pillow
# for tools/make_photo_folder.py and Debian's dataset-fashion-mnist. On 2 cores the whole
# experiment takes about 25 minutes, most of it the pretraining (1896 steps: resnet18 from
# scratch stays at chance on these photos for several hundred).
set -eu
work=${1:?usage: tools/transfer_experiment.sh WORKDIR [RESNET]}
resnet=${2:-build/resnet}
here=$(dirname "$0")
mkdir -p "$work"

# Folders: 1000 + 200 photos per class for pretraining, 100 + 100 for fine-tuning.
[ -d "$work/pre" ] || python3 "$here/make_photo_folder.py" --out "$work/pre" --classes 0,1,2,3,4 \
  --per-class-train 1000 --per-class-val 200 --seed 3 --background flat
[ -d "$work/ft" ] || python3 "$here/make_photo_folder.py" --out "$work/ft" --classes 5,6,7,8,9 \
  --per-class-train 100 --per-class-val 100 --seed 2 --background flat

[ -f "$work/pretrain/best.safetensors" ] ||
  "$resnet" train --model resnet18 --data "folder:$work/pre" --size 112 --batch 64 --epochs 24 \
    --lr 0.05 --label-smoothing 0.1 --crop-scale 0.35 --seed 1 --out "$work/pretrain"

# The same recipe and budget for both; only the starting weights differ.
for seed in 1 2 3; do
  for run in finetune scratch; do
    init=""
    [ "$run" = finetune ] && init="--init $work/pretrain/best.safetensors"
    # shellcheck disable=SC2086
    "$resnet" train --model resnet18 --data "folder:$work/ft" --size 112 --batch 32 --epochs 8 \
      --lr 0.02 --label-smoothing 0.1 --crop-scale 0.35 --seed "$seed" $init \
      --out "$work/$run-$seed"
  done
done

for seed in 1 2 3; do
  for run in finetune scratch; do
    python3 - "$work/$run-$seed/metrics.csv" "$run seed $seed" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
best = max(float(r["test_acc"]) for r in rows)
print(f"{sys.argv[2]:17s} best test accuracy {best:.4f}, last {float(rows[-1]['test_acc']):.4f}")
PY
  done
done
