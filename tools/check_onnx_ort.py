#!/usr/bin/env python3
"""Checks `resnet export` against ONNX Runtime: the exported file must compute what
`resnet run` computes.

Usage (any python3 with numpy; node and bench/node_modules for ONNX Runtime):
  tools/check_onnx_ort.py [--models resnet18 resnet50 resnet20 resnext50_32x4d ...]
                          [--batch 2] [--size S] [--seed 1] [--resnet build/resnet]
                          [--threads 2] [--keep DIR] [--model-args "--shortcut B"]

For each model, in a temporary directory:
  1. random weights: the model's own initialization (`resnet run --state-out`), with every
     BatchNorm's weight, bias, running mean and running variance redrawn, so that BN's
     mapping is tested on statistics that are not the trivial 0 and 1;
  2. a random input X (uniform in [-1, 1)), shape [batch, C, S, S]; S defaults to 224 for
     the ImageNet networks, 32 for the CIFAR ones, 56 for blocks;
  3. resnet run    --model M --weights W --input X --output OURS
     resnet export --model M --weights W --onnx M.onnx
     node bench/ort_run.js --model M.onnx --input X --output ORT
     (--model-args, e.g. "--shortcut B --in-channels 1", goes to both resnet commands)
  4. max|ORT - OURS| <= 1e-4 * max|OURS| (the numerics contract, the README's "Numerics").

One line per model; the exit status is 1 if any model fails, 2 when a tool is missing.
"""
import argparse
import json
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
ORT_RUN = REPO_ROOT / "bench" / "ort_run.js"
TOLERANCE = 1e-4
CIFAR_PREFIXES = ("resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "resnet1202",
                  "plain")


def read_safetensors(path):
    """{name: array} from a safetensors file (F32 and I64 are all our checkpoints hold)."""
    data = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    dtypes = {"F32": np.float32, "I64": np.int64}
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        arr = np.frombuffer(data[8 + n + begin:8 + n + end], dtype=dtypes[info["dtype"]])
        out[name] = arr.reshape(info["shape"]).copy()
    return out


def write_safetensors(path, tensors):
    names = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        blob = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": names[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def randomize_batch_norm(state, rng):
    """Redraws BN parameters and statistics (keys named like torchvision's bn*/downsample.1)."""
    for name in state:
        prefix, _, leaf = name.rpartition(".")
        if prefix + ".running_var" not in state:
            continue  # not a BatchNorm
        shape = state[name].shape
        if leaf == "weight":
            state[name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        elif leaf in ("bias", "running_mean"):
            state[name] = (rng.standard_normal(shape) * 0.2).astype(np.float32)
        elif leaf == "running_var":
            state[name] = rng.uniform(0.5, 2.0, shape).astype(np.float32)
    return state


def default_size(model):
    if model.startswith("block:"):
        return 56
    return 32 if model.startswith(CIFAR_PREFIXES) else 224


def run(cmd):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))}: {r.stderr.strip() or r.stdout.strip()}")
    return r.stdout


def check_model(args, model, work, rng):
    work.mkdir(parents=True, exist_ok=True)
    extra = shlex.split(args.model_args)
    in_channels = 3
    if "--in-channels" in extra:
        in_channels = int(extra[extra.index("--in-channels") + 1])
    if model.startswith("block:"):
        in_channels = int(model[len("block:"):].split(",")[0])
    size = args.size or default_size(model)
    x = rng.uniform(-1, 1, (args.batch, in_channels, size, size)).astype(np.float32)
    np.save(work / "x.npy", x)
    run([args.resnet, "run", "--model", model, "--input", work / "x.npy",
         "--output", work / "init_y.npy", "--state-out", work / "init.safetensors", *extra])
    write_safetensors(work / "w.safetensors",
                      randomize_batch_norm(read_safetensors(work / "init.safetensors"), rng))
    run([args.resnet, "run", "--model", model, "--weights", work / "w.safetensors",
         "--input", work / "x.npy", "--output", work / "ours.npy", *extra])
    run([args.resnet, "export", "--model", model, "--weights", work / "w.safetensors",
         "--onnx", work / "model.onnx", *extra])
    run(["node", ORT_RUN, "--model", work / "model.onnx", "--input", work / "x.npy",
         "--output", work / "ort.npy", "--threads", args.threads])
    ours, ort = np.load(work / "ours.npy"), np.load(work / "ort.npy")
    if ours.shape != ort.shape:
        return False, f"{model}: shapes differ: ours {ours.shape}, ONNX Runtime {ort.shape}"
    scale = float(np.abs(ours).max())
    diff = float(np.abs(ours.astype(np.float64) - ort).max())
    ok = diff <= TOLERANCE * scale
    return ok, (f"{model:<18} input {list(x.shape)}  max|ours| {scale:.4g}  max|diff| {diff:.3g}"
                f"  diff/max {diff / scale if scale else float('nan'):.3g}  "
                f"{'ok' if ok else 'FAILED'} (limit {TOLERANCE:g})")


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", metavar="MODEL",
                   default=["resnet18", "resnet50", "resnet20", "resnext50_32x4d"],
                   help="MODEL names (block:IN,OUT[,STRIDE] included)")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--size", type=int, default=0, help="0: the family's usual size")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--resnet", default=str(REPO_ROOT / "build" / "resnet"))
    p.add_argument("--model-args", default="",
                   help="model options for resnet run and export, e.g. '--shortcut B'")
    p.add_argument("--keep", help="keep the files here instead of a temporary directory")
    args = p.parse_args()

    if not Path(args.resnet).exists():
        print(f"check_onnx_ort: {args.resnet} not found; build first", file=sys.stderr)
        return 2
    if shutil.which("node") is None:
        print("check_onnx_ort: node not found (Debian: nodejs); ONNX Runtime not run",
              file=sys.stderr)
        return 2
    if not (REPO_ROOT / "bench" / "node_modules" / "onnxruntime-node").exists():
        print("check_onnx_ort: onnxruntime-node not installed "
              "(cd bench && ONNXRUNTIME_NODE_INSTALL=skip npm install)", file=sys.stderr)
        return 2

    rng = np.random.default_rng(args.seed)
    failed = 0
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="check_onnx_ort_"))
    try:
        for model in args.models:
            try:
                ok, line = check_model(args, model, root / model.replace(":", "_").replace(",", "_"),
                                       rng)
            except RuntimeError as e:
                ok, line = False, f"{model}: FAILED: {e}"
            print(line, flush=True)
            failed += not ok
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
