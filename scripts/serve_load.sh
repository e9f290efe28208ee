#!/usr/bin/env bash
# Load measurement of `resnet serve` on loopback, for the README's figures: for each model,
# 16 concurrent clients (hey) for DURATION seconds against --max-batch 1 and then
# --max-batch 16, with infer requests of one 224x224 image, as JSON and with the binary
# tensor extension. Prints throughput, p50/p99 latency, the error count, the server's
# RSS (current and peak), and `resnet bench` images/s at the same batch size and dtype, of
# which the server's throughput is a fraction (1 - that fraction is its overhead).
# Run it on an idle machine: hey, the server and bench share the cores.
#
# Usage: scripts/serve_load.sh
# Environment: DURATION (seconds per run, default 30), MODELS ("resnet50 resnet18"),
#   DTYPE (f32), SIZE (224), CLIENTS (16), BATCHES ("1 16"), FORMATS ("json binary"),
#   BUILD_DIR (build), PORT (8765), BENCH_ITERS (20).
set -euo pipefail
cd "$(dirname "$0")/.."

duration="${DURATION:-30}"
models="${MODELS:-resnet50 resnet18}"
dtype="${DTYPE:-f32}"
size="${SIZE:-224}"
clients="${CLIENTS:-16}"
batches="${BATCHES:-1 16}"
formats="${FORMATS:-json binary}"
resnet="${BUILD_DIR:-build}/resnet"
port="${PORT:-8765}"
bench_iters="${BENCH_ITERS:-20}"

command -v hey >/dev/null || { echo "serve_load: needs hey (apt-get install hey)" >&2; exit 1; }
[ -x "$resnet" ] || { echo "serve_load: no $resnet; build first" >&2; exit 1; }

work="$(mktemp -d)"
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# One image [1, 3, SIZE, SIZE] of values in [-1, 1): body.json, and body.bin with its
# JSON header length in body.bin.len.
/usr/bin/python3 - "$work" "$size" <<'PY'
import json, random, struct, sys
work, size = sys.argv[1], int(sys.argv[2])
random.seed(1)
values = [round(random.uniform(-1, 1), 6) for _ in range(3 * size * size)]
shape = [1, 3, size, size]
inp = {"name": "input", "datatype": "FP32", "shape": shape}
with open(f"{work}/body.json", "w") as f:
    json.dump({"inputs": [dict(inp, data=values)]}, f)
head = json.dumps({"inputs": [dict(inp, parameters={"binary_data_size": 4 * len(values)})]})
with open(f"{work}/body.bin", "wb") as f:
    f.write(head.encode() + struct.pack(f"<{len(values)}f", *values))
with open(f"{work}/body.bin.len", "w") as f:
    f.write(str(len(head.encode())))
PY

start_server() {  # model max_batch
  "$resnet" serve --model "$1" --size "$size" --dtype "$dtype" --max-batch "$2" \
    --port "$port" >"$work/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 600); do
    grep -q "listening on" "$work/server.log" && return 0
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
    sleep 0.2
  done
  echo "serve_load: the server did not start" >&2
  exit 1
}

stop_server() {
  kill -TERM "$server_pid"
  wait "$server_pid" || { echo "serve_load: the server exited non-zero" >&2; exit 1; }
  server_pid=""
}

kib() { awk -v k="$(grep "^$1:" "/proc/$server_pid/status" | awk '{print $2}')" \
  'BEGIN { printf "%.0f", k / 1024 }'; }

run_hey() {  # model format -> prints "req/s p50_ms p99_ms errors"
  local url="http://127.0.0.1:$port/v2/models/$1/infer" out="$work/hey.txt"
  if [ "$2" = json ]; then
    hey -z "${duration}s" -c "$clients" -t 60 -m POST -T application/json \
      -D "$work/body.json" "$url" >"$out"
  else
    hey -z "${duration}s" -c "$clients" -t 60 -m POST -T application/octet-stream \
      -H "Inference-Header-Content-Length: $(cat "$work/body.bin.len")" \
      -D "$work/body.bin" "$url" >"$out"
  fi
  awk '
    /Requests\/sec:/ { rps = $2 }
    /50% in/ { p50 = $3 * 1000 }
    /99% in/ { p99 = $3 * 1000 }
    /^[ \t]*\[[0-9]+\][ \t]+[0-9]+ responses/ { code = $1; gsub(/[\[\]]/, "", code);
                                         if (code != "200") errors += $2 }
    /Error distribution:/ { in_errors = 1; next }
    in_errors && /^[ \t]*\[[0-9]+\]/ { n = $1; gsub(/[\[\]]/, "", n); errors += n }
    END { printf "%.1f %.1f %.1f %d\n", rps, p50, p99, errors }' "$out"
}

bench_ips() {  # model batch
  "$resnet" bench --model "$1" --size "$size" --batch "$2" --dtype "$dtype" \
    --iters "$bench_iters" --json | /usr/bin/python3 -c 'import json,sys; print("%.1f" % json.load(sys.stdin)["images_per_s"])'
}

echo "resnet serve under load: $clients clients, ${duration} s per run, $dtype, ${size}x${size}," \
  "$(nproc) cores, $(date -u +%Y-%m-%d)"
echo
echo "| model | max batch | body | images/s | p50 ms | p99 ms | errors | RSS MiB (peak) | bench images/s | served / bench |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for model in $models; do
  for batch in $batches; do
    bench="$(bench_ips "$model" "$batch")"
    start_server "$model" "$batch"
    for format in $formats; do
      read -r rps p50 p99 errors < <(run_hey "$model" "$format")
      ratio="$(awk -v a="$rps" -v b="$bench" 'BEGIN { printf "%.2f", a / b }')"
      echo "| $model | $batch | $format | $rps | $p50 | $p99 | $errors | $(kib VmRSS) ($(kib VmHWM)) | $bench | $ratio |"
    done
    stop_server
  done
done
