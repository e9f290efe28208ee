#!/usr/bin/env python3
"""Checkpoints written by `resnet` load in PyTorch: load_state_dict(strict=True), same numbers.

Usage (with the interpreter that has python3-torch and python3-torchvision):
  /usr/bin/python3 tools/check_state_dict_interop.py [--resnet build/resnet]
      [--models resnet18,resnet50,resnext50_32x4d,resnet20] [--trained-steps 20]
      [--keep DIR]

For each model (torchvision's own class for the torchvision names, tools/torch_reference.py's
CIFAR mirror for resnet20), starting from our zoo's random initialisation:
  1. resnet run --model M --input X --output Y0 --state-out S0     (eval; S0 = the init)
  2. resnet run --model M --weights S0 --train --input X --output Y1 --state-out S1
                                                                   (running statistics move)
  3. resnet run --model M --weights S1 --input X --output Y2       (eval, moved statistics)
and in PyTorch: S0 and S1 loaded with load_state_dict(strict=True) into the torchvision
model, after checking that their keys, order, dtypes and shapes are exactly its
state_dict's; the training-mode pass from S0 compared with Y1 and its state_dict after the
pass with S1; the eval pass from S1 compared with Y2. Each comparison must meet the
numerics contract, max|ours - torch| <= 1e-4 * max|torch| (num_batches_tracked exactly).

Then, unless --trained-steps 0 or Fashion-MNIST is not installed, a checkpoint of a real
training run: `resnet train --max-steps N` (resnet20 on Fashion-MNIST, 1 input channel)
writes last.safetensors; it is loaded strictly into the CIFAR mirror built from its
metadata and compared with `resnet run --model last.safetensors` in eval mode.

Prints one line per check and exits 1 if any fails. Not part of the test suite (CI has no
PyTorch); tests/io/test_state_dict_interop.cpp checks the key listings without it.
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch_reference as ref  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODELS = ("resnet18", "resnet50", "resnext50_32x4d", "resnet20")
SHAPES = {"resnet20": (4, 3, 32, 32)}
TORCHVISION_SHAPE = (2, 3, 160, 160)
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
SEED = 7


class Report:
    """Collects pass/fail lines."""

    def __init__(self):
        self.failures = 0

    def line(self, ok, text):
        print(("PASS " if ok else "FAIL ") + text, flush=True)
        self.failures += 0 if ok else 1

    def compare(self, label, ours, torch_value):
        """The numerics contract on one tensor; num_batches_tracked exactly."""
        if ours.shape != torch_value.shape:
            self.line(False, f"{label}: shape {list(ours.shape)} vs torch "
                             f"{list(torch_value.shape)}")
            return
        if not torch_value.is_floating_point():
            self.line(torch.equal(ours, torch_value), f"{label}: {ours.tolist()} vs torch "
                                                      f"{torch_value.tolist()}")
            return
        scale = torch_value.abs().max().item()
        diff = (ours.double() - torch_value.double()).abs().max().item()
        ratio = diff / scale if scale > 0 else diff
        self.line(ratio <= ref.TOLERANCE,
                  f"{label}: max|diff| {diff:.3g}, max|torch| {scale:.3g}, ratio {ratio:.2e}")


def run(argv):
    """Runs a command, raising with its stderr when it fails."""
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))}: exit {proc.returncode}: "
                           f"{proc.stderr.strip()}")
    return proc.stdout


def check_keys(report, label, state, model):
    """The file's entries are exactly the model's state_dict: keys, order, dtypes, shapes."""
    expected = model.state_dict()
    same_keys = list(state.keys()) == list(expected.keys())
    mismatched = [k for k in expected if k in state and (
        state[k].dtype != expected[k].dtype or state[k].shape != expected[k].shape)]
    report.line(same_keys and not mismatched,
                f"{label}: {len(state)} entries, the torch model has {len(expected)}; order "
                f"{'same' if same_keys else 'DIFFERENT'}; dtype/shape mismatches: "
                f"{mismatched[:4] or 'none'}")


def check_model(report, binary, model_name, work):
    shape = SHAPES.get(model_name, TORCHVISION_SHAPE)
    gen = torch.Generator().manual_seed(SEED)
    x = torch.randn(shape, generator=gen)
    d = work / model_name
    d.mkdir(parents=True, exist_ok=True)
    xf, y0, y1, y2 = d / "x.npy", d / "y0.npy", d / "y1.npy", d / "y2.npy"
    s0, s1 = d / "s0.safetensors", d / "s1.safetensors"
    ref.save_npy(xf, x)
    run([binary, "run", "--model", model_name, "--input", xf, "--output", y0,
         "--state-out", s0])
    run([binary, "run", "--model", model_name, "--weights", s0, "--train", "--input", xf,
         "--output", y1, "--state-out", s1])
    run([binary, "run", "--model", model_name, "--weights", s1, "--input", xf, "--output", y2])

    model = ref.build_model(model_name)
    label = f"{model_name} {'x'.join(map(str, shape))}"
    init = ref.load_safetensors(s0)
    check_keys(report, f"{label} S0 keys", init, model)
    model.load_state_dict(init, strict=True)
    report.line(True, f"{label}: S0 load_state_dict(strict=True)")
    model.eval()
    with torch.no_grad():
        report.compare(f"{label} eval output from S0", ref.load_npy(y0), model(x))
        model.train()
        report.compare(f"{label} train output", ref.load_npy(y1), model(x))
    moved = ref.load_safetensors(s1)
    after = model.state_dict()
    worst_name, worst = None, -1.0
    for name, value in after.items():
        if not value.is_floating_point():
            if not torch.equal(moved[name], value):
                report.line(False, f"{label} state after train: {name} {moved[name].tolist()} "
                                   f"vs torch {value.tolist()}")
            continue
        scale = value.abs().max().item()
        ratio = (moved[name].double() - value.double()).abs().max().item() / max(scale, 1e-30)
        if ratio > worst:
            worst_name, worst = name, ratio
    report.line(worst <= ref.TOLERANCE,
                f"{label} state after train: worst ratio {worst:.2e} ({worst_name})")
    fresh = ref.build_model(model_name)
    check_keys(report, f"{label} S1 keys", moved, fresh)
    fresh.load_state_dict(moved, strict=True)
    fresh.eval()
    with torch.no_grad():
        report.compare(f"{label} eval output from S1", ref.load_npy(y2), fresh(x))


def check_trained(report, binary, steps, work):
    if steps <= 0:
        return
    if not FASHION_MNIST.exists():
        print(f"SKIP trained checkpoint: {FASHION_MNIST} not installed")
        return
    out = work / "train"
    run([binary, "train", "--max-steps", str(steps), "--out", out, "--threads", "2"])
    checkpoint = out / "last.safetensors"
    state, meta = ref.load_safetensors(checkpoint, with_metadata=True)
    model = ref.build_model(meta["model"], num_classes=int(meta["num_classes"]),
                            in_channels=int(meta["in_channels"]),
                            shortcut=meta.get("shortcut", "A"))
    label = f"trained {meta['model']} ({steps} steps, {meta['in_channels']} channel)"
    check_keys(report, f"{label} keys", state, model)
    model.load_state_dict(state, strict=True)
    h, w = (int(v) for v in meta["input_size"].split("x"))
    x = torch.randn((3, int(meta["in_channels"]), h, w),
                    generator=torch.Generator().manual_seed(SEED))
    xf, yf = work / "trained_x.npy", work / "trained_y.npy"
    ref.save_npy(xf, x)
    run([binary, "run", "--model", checkpoint, "--input", xf, "--output", yf])
    model.eval()
    with torch.no_grad():
        report.compare(f"{label} eval output", ref.load_npy(yf), model(x))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resnet", type=Path, default=REPO_ROOT / "build" / "resnet")
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS))
    parser.add_argument("--trained-steps", type=int, default=20)
    parser.add_argument("--keep", type=Path, help="keep the files in this directory")
    args = parser.parse_args()
    if not args.resnet.exists():
        print(f"no binary at {args.resnet}: build first, or pass --resnet", file=sys.stderr)
        return 2
    ref.setup_torch()
    report = Report()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for model_name in args.models.split(","):
            check_model(report, args.resnet, model_name, work)
        check_trained(report, args.resnet, args.trained_steps, work)
    print(f"{report.failures} failure(s)")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
