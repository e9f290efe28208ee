#!/usr/bin/env python3
"""Inference speed of `resnet bench` against the runtimes people deploy ResNets with.

    bench/compare_runtimes.py [--model resnet50] [--size 224] [--batch 1] [--rounds 5]
                              [--threads 2] [--dtypes f32[,bf16,int8]] [--iters 20]
                              [--warmup 3] [--resnet build/resnet] [--python PY]

Peers (each is installed from Debian or npm as its entry says; a missing one is skipped):
  resnet <dtype>  `resnet bench --model MODEL --size S --batch B --threads T --json`, once per
                  dtype in --dtypes (with --dtype D; dtypes other than f32 are skipped when
                  `resnet bench --help` does not list --dtype);
  onnxruntime     ONNX Runtime (npm onnxruntime-node) through bench/ort_run.js, on our own
                  export of the model (`resnet export --size S`, made once at the start);
  pytorch         PyTorch 1.13 from Debian (python3-torch, python3-torchvision): the
                  torchvision model (tools/torch_reference.py for the CIFAR networks and
                  blocks), eval mode, torch.no_grad(), torch.set_num_threads(T);
  int8 files      with --quantized Q.onnx, that file (QDQ or QLinear operators, e.g. from
                  tools/gen_qdq_model.py) in `resnet bench --dtype int8` and in ONNX Runtime,
                  each on its own int8 kernels; the table's last line is their ratio;
  opencv          OpenCV DNN from Debian (python3-opencv) on the same export. OpenCV 4.6
                  rejects Identity nodes, which torch's exports contain and ours do not;
                  should a file have them, a copy without them is made (needs python3-onnx).

Each measurement is a fresh process; rounds alternate the runtimes, so that a slow spell
of a noisy machine hits all of them alike. Every runtime uses T threads and times --iters
runs after --warmup untimed ones, on random input. The report is a markdown table of
medians over the rounds: images/s, p50 latency, and the ratio of images/s to ONNX Runtime
f32 (above 1: faster than ONNX Runtime). A peer that is not installed is skipped, with a
line saying so. The PyTorch and OpenCV workers run under --python (default: Debian's
/usr/bin/python3, where python3-torch and python3-opencv install).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
ORT_RUN = os.path.join(HERE, "ort_run.js")
DEBIAN_PYTHON = "/usr/bin/python3"


def log(message):
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# Workers: run in a fresh process, print one JSON line like `resnet bench --json`
# ---------------------------------------------------------------------------------------


def time_calls(step, batch, iters, warmup):
    import time

    for _ in range(warmup):
        step()
    ms = []
    for _ in range(iters):
        t0 = time.perf_counter()
        step()
        ms.append((time.perf_counter() - t0) * 1000)
    ms.sort()

    def percentile(q):  # the same interpolation as `resnet bench` and ort_run.js
        pos = q * (len(ms) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(ms) - 1)
        return ms[lo] + (ms[hi] - ms[lo]) * (pos - lo)

    p50 = percentile(0.5)
    return {"images_per_s": batch * 1000.0 / p50, "latency_ms_p50": p50,
            "latency_ms_p90": percentile(0.9)}


def torch_worker(args):
    import torch

    sys.path.insert(0, os.path.join(REPO_ROOT, "tools"))
    import torch_reference as ref

    torch.set_num_threads(args.threads)
    model = ref.build_model(args.model).eval()
    x = torch.rand(args.batch, args.in_channels, args.size, args.size) * 2 - 1

    def step():
        with torch.no_grad():
            model(x)

    result = time_calls(step, args.batch, args.iters, args.warmup)
    print(json.dumps({"peer": "pytorch", "version": torch.__version__, **result}))


def opencv_worker(args):
    import cv2
    import numpy as np

    cv2.setNumThreads(args.threads)
    net = cv2.dnn.readNetFromONNX(args.onnx)
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (args.batch, args.in_channels, args.size, args.size)).astype(np.float32)

    def step():
        net.setInput(x)
        net.forward()

    result = time_calls(step, args.batch, args.iters, args.warmup)
    print(json.dumps({"peer": "opencv", "version": cv2.__version__, **result}))


# ---------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------


def succeeds(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def run_json(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {(r.stderr or r.stdout).strip()}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def strip_identity_worker(args):
    """Copies --onnx to --out with every Identity node removed (its readers read its
    input instead); prints whether there was anything to remove."""
    import onnx

    print(json.dumps({"rewritten": without_identity(onnx, args.onnx, args.out)}))


def without_identity(onnx, src, dst):

    model = onnx.load(src)
    graph = model.graph
    alias = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity"}
    if not alias:
        return False
    outputs = {o.name for o in graph.output}
    if outputs & alias.keys():
        raise RuntimeError(f"{src}: an Identity node writes a graph output; not rewritten")
    kept = [n for n in graph.node if n.op_type != "Identity"]

    def resolve(name):
        while name in alias:
            name = alias[name]
        return name

    for n in kept:
        for i, name in enumerate(n.input):
            n.input[i] = resolve(name)
    del graph.node[:]
    graph.node.extend(kept)
    onnx.save(model, dst)
    return True


def in_channels_of(model):
    if model.startswith("block:"):
        return int(model[len("block:"):].split(",")[0])
    return 3


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet50")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dtypes", default="f32", help="comma-separated: f32, bf16, int8")
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--resnet", default=os.path.join(REPO_ROOT, "build", "resnet"))
    p.add_argument("--quantized", metavar="Q.onnx", action="append", default=[],
                   help="also time a quantized ONNX file (QDQ or QLinear operators) in both "
                        "`resnet bench --dtype int8` and ONNX Runtime: int8 against int8 "
                        "(repeatable)")
    p.add_argument("--python", default=DEBIAN_PYTHON if os.path.exists(DEBIAN_PYTHON)
                   else sys.executable, help="interpreter for the PyTorch and OpenCV workers")
    p.add_argument("--worker", choices=["torch", "opencv", "strip-identity"],
                   help=argparse.SUPPRESS)
    p.add_argument("--onnx", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--in-channels", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    args.in_channels = args.in_channels or in_channels_of(args.model)
    if args.worker == "torch":
        return torch_worker(args)
    if args.worker == "opencv":
        return opencv_worker(args)
    if args.worker == "strip-identity":
        return strip_identity_worker(args)

    if not os.path.exists(args.resnet):
        log(f"compare_runtimes: {args.resnet} not found; build first (cmake --build build)")
        return 2
    dtypes = [d for d in args.dtypes.split(",") if d]
    bench_help = subprocess.run([args.resnet, "bench", "--help"], capture_output=True,
                                text=True).stdout
    if "--dtype" not in bench_help:
        if any(d != "f32" for d in dtypes):
            log(f"resnet bench has no --dtype option: skipping {', '.join(d for d in dtypes if d != 'f32')}")
        dtypes, dtype_flag = ["f32"], False
    else:
        dtype_flag = True

    shape = ["--size", str(args.size), "--batch", str(args.batch)]
    timing = ["--iters", str(args.iters), "--warmup", str(args.warmup)]
    runtimes = {}  # name -> command of one measurement
    for d in dtypes:
        runtimes[f"resnet {d}"] = ([args.resnet, "bench", "--model", args.model, *shape,
                                    "--threads", str(args.threads), *timing, "--json"] +
                                   (["--dtype", d] if dtype_flag else []))

    work = tempfile.mkdtemp(prefix="compare_runtimes_")
    try:
        onnx_path = os.path.join(work, "model.onnx")
        exported = subprocess.run([args.resnet, "export", "--model", args.model, "--onnx",
                                   onnx_path, "--size", str(args.size)],
                                  capture_output=True, text=True)
        if exported.returncode != 0:
            log(f"resnet export failed ({exported.stderr.strip()}): ONNX Runtime and OpenCV "
                "are skipped")
            onnx_path = None

        has_ort = (shutil.which("node") is not None and
                   os.path.isdir(os.path.join(HERE, "node_modules", "onnxruntime-node")))
        if not has_ort:
            log("ONNX Runtime is not installed (node, and in bench/: ONNXRUNTIME_NODE_INSTALL=skip "
                "npm install): skipped")
        elif onnx_path:
            runtimes["onnxruntime f32"] = [
                "node", ORT_RUN, "--model", onnx_path, "--bench", "--threads", str(args.threads),
                "--shape", f"{args.batch},{args.in_channels},{args.size},{args.size}", *timing]
        for q in args.quantized:
            # The same quantized file in both runtimes, each on its own int8 kernels.
            tag = os.path.basename(q)
            runtimes[f"resnet int8 ({tag})"] = [
                args.resnet, "bench", "--model", q, *shape, "--threads", str(args.threads),
                *timing, "--json", "--dtype", "int8"]
            if has_ort:
                runtimes[f"onnxruntime int8 ({tag})"] = [
                    "node", ORT_RUN, "--model", q, "--bench", "--threads", str(args.threads),
                    "--shape", f"{args.batch},{args.in_channels},{args.size},{args.size}",
                    *timing]

        worker = [args.python, os.path.abspath(__file__), "--model", args.model, *shape,
                  "--threads", str(args.threads), *timing, "--in-channels", str(args.in_channels)]
        if succeeds([args.python, "-c", "import torch, torchvision"]):
            runtimes["pytorch f32"] = worker + ["--worker", "torch"]
        else:
            log(f"PyTorch is not installed for {args.python} (python3-torch, "
                "python3-torchvision): skipped")

        if not succeeds([args.python, "-c", "import cv2"]):
            log(f"OpenCV is not installed for {args.python} (python3-opencv): skipped")
        elif onnx_path:
            opencv_onnx = onnx_path
            if succeeds([args.python, "-c", "import onnx"]):
                copy = os.path.join(work, "model_no_identity.onnx")
                strip = [args.python, os.path.abspath(__file__), "--worker", "strip-identity",
                         "--onnx", onnx_path, "--out", copy]
                if run_json(strip)["rewritten"]:
                    opencv_onnx = copy
            runtimes["opencv f32"] = worker + ["--worker", "opencv", "--onnx", opencv_onnx]

        results = {name: [] for name in runtimes}
        for r in range(args.rounds):
            for name, cmd in runtimes.items():
                try:
                    results[name].append(run_json(cmd))
                    log(f"round {r + 1}/{args.rounds}: {name}: "
                        f"{results[name][-1]['images_per_s']:.2f} images/s")
                except (RuntimeError, ValueError) as e:
                    log(f"round {r + 1}/{args.rounds}: {name}: {e}")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print_table(args, results)
    return 0


def print_table(args, results):
    medians = {}
    for name, runs in results.items():
        if runs:
            medians[name] = (statistics.median(r["images_per_s"] for r in runs),
                             statistics.median(r["latency_ms_p50"] for r in runs), len(runs))
    reference = medians.get("onnxruntime f32")
    print(f"{args.model}, batch {args.batch}, {args.in_channels}x{args.size}x{args.size}, "
          f"{args.threads} threads, medians of {args.rounds} rounds of {args.iters} iterations\n")
    print("| runtime | images/s | p50 latency (ms) | vs ONNX Runtime f32 |")
    print("| --- | ---: | ---: | ---: |")
    for name, (ips, p50, n) in medians.items():
        ratio = f"{ips / reference[0]:.2f}x" if reference else "n/a"
        note = "" if n == args.rounds else f" ({n} of {args.rounds} rounds)"
        print(f"| {name}{note} | {ips:.2f} | {p50:.2f} | {ratio} |")
    for name in results:
        if name not in medians:
            print(f"| {name} | failed | | |")
    for q in args.quantized:
        tag = os.path.basename(q)
        ours, theirs = (medians.get(f"{r} int8 ({tag})") for r in ("resnet", "onnxruntime"))
        if ours and theirs:
            print(f"\nint8 on the same file {tag}: resnet {ours[0] / theirs[0]:.2f}x ONNX Runtime")


if __name__ == "__main__":
    sys.exit(main())
