#!/usr/bin/env python3
"""Where a step's time goes: oneDNN's primitives against our own loops.

Runs `resnet bench` (any mode and model it takes) with ONEDNN_VERBOSE=1 and sums the
execution times oneDNN reports per primitive (kind, implementation, propagation, shape)
over the timed steps only: every step runs the same primitives, so the log's last
iters * (lines per step) lines are those steps, and the warm-up steps (whose first one
also pays for page faults) are left out. What the step takes beyond oneDNN's share is
our own code: batch norm's statistics and affine passes, SGD, the loss, option-A
shortcuts, and the gaps between primitives.

    bench/profile_step.py --top 15 -- --model resnet20 --mode train --batch 128 --size 28 \\
        --in-channels 1 --iters 20 --warmup 3

Everything after `--` goes to `resnet bench` (`--json` is added). Verbose logging costs a
little time itself, so the step time printed here runs slightly above a plain
`resnet bench`; use it for shares, and `resnet bench` or bench/compare_pytorch.py for
speed. Needs only python3.
"""
import argparse
import collections
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_exec_lines(text):
    """(kind, impl, prop, shape, ms) for each oneDNN 'exec' verbose line."""
    rows = []
    for line in text.splitlines():
        if not line.startswith(("onednn_verbose,", "dnnl_verbose,")):
            continue
        fields = line.strip().split(",")
        if "exec" not in fields:
            continue
        at = fields.index("exec")
        try:
            ms = float(fields[-1])
        except ValueError:
            continue
        # exec, engine, kind, impl, prop, memory descriptors, attrs, aux, shape, time
        kind, impl, prop = fields[at + 2], fields[at + 3], fields[at + 4]
        rows.append((kind, impl, prop, fields[-2], ms))
    return rows


def option_value(bench_args, name, default):
    """The integer value of option `name` in `bench_args`, or `default`."""
    for i, arg in enumerate(bench_args):
        if arg == name and i + 1 < len(bench_args):
            return int(bench_args[i + 1])
        if arg.startswith(name + "="):
            return int(arg.split("=", 1)[1])
    return default


def run_bench(resnet, bench_args):
    """Runs `resnet bench ARGS --json` with oneDNN's verbose log: (its JSON, exec rows)."""
    env = dict(os.environ, ONEDNN_VERBOSE="1", DNNL_VERBOSE="1")
    run = subprocess.run([resnet, "bench", *bench_args, "--json"], env=env,
                         capture_output=True, text=True, check=False)
    if run.returncode != 0:
        sys.exit(f"resnet bench failed ({run.returncode}): {run.stderr.strip()[-500:]}")
    result = next(json.loads(line) for line in reversed(run.stdout.splitlines())
                  if line.startswith("{"))
    return result, parse_exec_lines(run.stdout + run.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resnet", default=os.path.join(HERE, "..", "build", "resnet"))
    parser.add_argument("--top", type=int, default=12, help="primitives to list one by one")
    parser.add_argument("bench_args", nargs=argparse.REMAINDER,
                        help="-- then the arguments of `resnet bench`")
    args = parser.parse_args()
    bench_args = [a for a in args.bench_args if a != "--"]
    if not bench_args:
        parser.error("expected `-- ARGS` for resnet bench")
    iters = option_value(bench_args, "--iters", 20)
    warmup = option_value(bench_args, "--warmup", 3)
    result, rows = run_bench(args.resnet, bench_args)
    if not rows:
        sys.exit("no oneDNN verbose lines: is this oneDNN build without verbose support?")
    # The first step may run a few one-off primitives more; floor division leaves them out.
    per_step = len(rows) // (iters + warmup)
    rows = rows[-iters * per_step:]
    steps = iters
    by_kind = collections.defaultdict(float)
    by_primitive = collections.defaultdict(lambda: [0.0, 0])
    for kind, impl, prop, shape, ms in rows:
        by_kind[(kind, prop)] += ms
        entry = by_primitive[(kind, impl, prop, shape)]
        entry[0] += ms
        entry[1] += 1
    step_ms = result["latency_ms_p50"]
    onednn_ms = sum(by_kind.values()) / steps
    print(f"step p50 {step_ms:.1f} ms (verbose on; {steps} timed steps); oneDNN primitives "
          f"{onednn_ms:.1f} ms a step ({100 * onednn_ms / step_ms:.0f}%), the rest "
          f"{step_ms - onednn_ms:.1f} ms ({100 * (1 - onednn_ms / step_ms):.0f}%)")
    print("\nby kind, ms a step:")
    for (kind, prop), ms in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        print(f"  {ms / steps:8.2f}  {100 * ms / steps / step_ms:5.1f}%  {kind} {prop}")
    print(f"\ntop {args.top} primitives, ms a step (calls a step):")
    top = sorted(by_primitive.items(), key=lambda kv: -kv[1][0])[:args.top]
    for (kind, impl, prop, shape), (ms, calls) in top:
        print(f"  {ms / steps:8.2f}  x{calls / steps:4.1f}  {kind} {prop} {impl} {shape}")


if __name__ == "__main__":
    main()
