#!/usr/bin/env bash
# kill -9 safety on the default recipe (resnet20 on Fashion-MNIST): trains once without
# interruption, then trains again killing the run with SIGKILL KILLS times, each after a
# random time of up to twice the run's duration divided by KILLS (with --save-every, so
# inside checkpoint writes too), resuming after each kill, and requires the same
# last.safetensors byte for byte.
# The short version runs in the test suite (CrashSafety.TwentySigkills*).
# Usage: scripts/kill_test.sh [KILLS (default 20)] [more resnet train options]
# Environment: RESNET (default build/resnet), THREADS (2), SAVE_EVERY (50).
set -euo pipefail
cd "$(dirname "$0")/.."
kills=${1:-20}
shift || true
resnet=${RESNET:-build/resnet}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
args=(train --threads "${THREADS:-2}" --save-every "${SAVE_EVERY:-50}" "$@")

start=$(date +%s.%N)
"$resnet" "${args[@]}" --out "$work/reference" >"$work/reference.log"
seconds=$(python3 -c "print($(date +%s.%N) - $start)")
echo "kill_test: uninterrupted run ${seconds%.*} s; $kills kills at random moments"

killed=0
finished=0
for i in $(seq "$kills"); do
  resume=()
  [ -f "$work/killed/config.json" ] && resume=(--resume)
  "$resnet" "${args[@]}" --out "$work/killed" "${resume[@]}" >>"$work/killed.log" 2>&1 &
  pid=$!
  sleep "$(python3 -c "import random; print(random.uniform(0, 2 * $seconds / $kills))")"
  kill -9 "$pid" 2>/dev/null || true
  status=0
  { wait "$pid"; } 2>/dev/null || status=$?
  if [ "$status" = 0 ]; then
    finished=1  # it ended before its kill, and succeeded
    break
  fi
  [ "$status" = 137 ] || { echo "kill_test: the run failed with status $status" >&2; exit 1; }
  killed=$((killed + 1))
  echo "kill $killed: $(ls "$work/killed" | tr '\n' ' ')"
done
[ "$finished" = 1 ] || "$resnet" "${args[@]}" --out "$work/killed" --resume >>"$work/killed.log"
if cmp -s "$work/reference/last.safetensors" "$work/killed/last.safetensors"; then
  echo "kill_test: identical weights after $killed kills"
else
  echo "kill_test: last.safetensors differs from the uninterrupted run's" >&2
  exit 1
fi
