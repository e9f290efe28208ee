#!/usr/bin/env python3
"""Port check: run `resnet run` and PyTorch on the same random case and compare them.

Usage (run with the interpreter that has python3-torch, e.g. /usr/bin/python3):
  tools/check_against_torch.py [--resnet build/resnet] [--model MODEL] [--shape N,C,H,W]
                               [--seed S] [--modes eval,train] [--trials K] [--keep DIR]
                               [--num-classes N] [--in-channels C] [--shortcut A|B]
  tools/check_against_torch.py --self-test      # validates this script's file plumbing
                                                # (tools/check_against_torch_self_test.py)

For each case it writes random weights (W.safetensors), input (X.npy) and output gradient
(DY.npy) to a temporary directory, then for each mode runs
  resnet run --model MODEL --weights W --input X --output Y [--train]
             --grad-output DY --grad-input DX --grads G --state-out S
and the same pass in PyTorch, and checks the numerics contract (the README's "Numerics"):
  max|ours - torch| <= 1e-4 * max|torch|
for the output, the input gradient, every parameter gradient and every state_dict tensor
(num_batches_tracked must match exactly). --num-classes, --in-channels and --shortcut
(CIFAR networks) are passed to `resnet run` and to the PyTorch model alike. In eval mode
it also runs
  resnet run --model MODEL --weights W --input X --output Y_infer
(no gradient: every module runs itself, unfused) and checks that output the same way.

A tensor that is float32 rounding noise in PyTorch itself (it misses PyTorch's float64
value by more than the contract allows, e.g. the 1x1 shortcut's weight gradient with one
input channel in training mode, exactly zero in exact arithmetic) is judged against
float64 instead, and its line says "ill-conditioned" (--strict: never).

One line per tensor; the exit status is 1 if any check fails, 2 on a usage error (e.g.
no binary).

Without --model it draws --trials random seed blocks (channels 1..9, sizes 1..13,
stride 1 or 2, batch 1..4). Without --seed the seed is random and printed, with a command
line that reproduces the case.
"""

import argparse
import copy
import os
import random
import shlex
import subprocess
import sys
import tempfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch_reference as ref  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BINARY = REPO_ROOT / "build" / "resnet"
DEFAULT_TORCHVISION_SHAPE = (2, 3, 64, 64)
DEFAULT_CIFAR_SHAPE = (4, 3, 32, 32)
ILL_CONDITIONED_SLACK = 10.0        # see compare_tensor
MAX_REDRAWS = 20                    # attempts to avoid a case whose output is all zero


# ---------------------------------------------------------------------------------------
# Drawing cases
# ---------------------------------------------------------------------------------------


def output_size(size, stride):
    """Spatial output size of the block's 3x3/pad 1 and 1x1/pad 0 convs with `stride`."""
    return (size - 1) // stride + 1


def train_feasible(shape, stride):
    """True if training-mode BatchNorm sees more than one value per channel."""
    n, _, h, w = shape
    return n * output_size(h, stride) * output_size(w, stride) > 1


def random_shape(rng, channels, stride):
    """A random N,C,H,W (batch 1..4, sizes 1..13) on which training-mode BN is defined."""
    while True:
        shape = (rng.randint(1, 4), channels, rng.randint(1, 13), rng.randint(1, 13))
        if train_feasible(shape, stride):
            return shape


def random_block_case(rng):
    """A random (MODEL string, input shape) for the seed's block."""
    in_channels, out_channels = rng.randint(1, 9), rng.randint(1, 9)
    stride = rng.choice((1, 2))
    model_name = f"block:{in_channels},{out_channels},{stride}"
    return model_name, random_shape(rng, in_channels, stride)


def default_shape(model_name, rng, in_channels=None):
    """An input shape for `model_name` when the user gave none."""
    block = ref.parse_block(model_name)
    if block is None:
        n, c, h, w = (DEFAULT_CIFAR_SHAPE if model_name in ref.CIFAR_NAMES
                      else DEFAULT_TORCHVISION_SHAPE)
        return (n, in_channels or c, h, w)
    in_channels, _, stride = block
    return random_shape(rng, in_channels, stride)


def parse_shape(text):
    """'2,3,8,8' -> (2, 3, 8, 8)."""
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shape '{text}': expected N,C,H,W integers")
    if len(shape) != 4 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"shape '{text}': expected 4 positive integers")
    return shape


# ---------------------------------------------------------------------------------------
# Comparing
# ---------------------------------------------------------------------------------------


class Report:
    """Collects PASS/FAIL lines; prints them unless quiet."""

    def __init__(self, quiet=False):
        self.quiet = quiet
        self.passed = 0
        self.failed = 0

    def add(self, ok, text):
        """Record one check and print it as '<text> PASS|FAIL'."""
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        if not self.quiet:
            print(f"{text} {'PASS' if ok else 'FAIL'}", flush=True)


def max_abs_diff(a, b):
    """max|a - b| in float64 (0 for empty tensors)."""
    return (a.double() - b.double()).abs().max().item() if a.numel() else 0.0


def max_abs(a):
    """max|a| in float64 (0 for empty tensors)."""
    return a.double().abs().max().item() if a.numel() else 0.0


def compare_tensor(report, label, ours, theirs, exact=None, strict=False):
    """Check one tensor against PyTorch's float32 value per the numerics contract.

    `exact` is PyTorch's float64 value. If the contract check fails and PyTorch's own
    float32 value misses the float64 one by more than the contract allows (the tensor is
    rounding noise, e.g. a weight gradient that is exactly zero in exact arithmetic),
    ours is judged against float64 instead: it must be within the contract's bound plus
    ILL_CONDITIONED_SLACK times PyTorch's own float32 error. --strict turns this off.
    """
    label = f"  {label:<44}"
    if tuple(ours.shape) != tuple(theirs.shape):
        report.add(False, f"{label} shape {list(ours.shape)}, expected {list(theirs.shape)}")
        return
    if not theirs.is_floating_point():
        ok = ours.dtype == theirs.dtype and torch.equal(ours, theirs)
        report.add(ok, f"{label} {ours.dtype} {ours.flatten()[:4].tolist()} "
                       f"expected {theirs.dtype} {theirs.flatten()[:4].tolist()} (exact)")
        return
    if ours.dtype != theirs.dtype:
        report.add(False, f"{label} dtype {ours.dtype}, expected {theirs.dtype}")
        return
    diff, scale = max_abs_diff(ours, theirs), max_abs(theirs)
    ok = diff <= ref.TOLERANCE * scale  # NaN diff compares False: fails
    ratio = diff / scale if scale > 0 else (0.0 if diff == 0 else float("inf"))
    text = f"{label} max|d|={diff:.3e} max|ref|={scale:.3e} ratio={ratio:.2e}"
    if not ok and exact is not None and not strict:
        torch_error = max_abs_diff(theirs, exact)
        if torch_error > ref.TOLERANCE * scale:
            bound = ref.TOLERANCE * max_abs(exact) + ILL_CONDITIONED_SLACK * torch_error
            our_error = max_abs_diff(ours, exact)
            ok = our_error <= bound
            text += (f" [ill-conditioned: torch f32 off f64 by {torch_error:.2e}; "
                     f"ours off f64 by {our_error:.2e}, bound {bound:.2e}]")
    report.add(ok, text)


def compare_dicts(report, prefix, ours, theirs, exact, strict):
    """Compare two name -> tensor mappings: same names, each tensor within tolerance."""
    for name, tensor in theirs.items():
        if name in ours:
            compare_tensor(report, f"{prefix}{name}", ours[name], tensor, exact[name], strict)
        else:
            report.add(False, f"  {prefix + name:<44} missing from our file")
    for name in ours:
        if name not in theirs:
            report.add(False, f"  {prefix + name:<44} unexpected (not in PyTorch's)")


def load_our_npy(report, label, path):
    """Load one of our .npy outputs; a dtype other than float32 is a FAIL (returns None)."""
    array = np.load(path)
    if array.dtype != np.float32:
        report.add(False, f"  {label:<44} dtype {array.dtype}, expected float32")
        return None
    return torch.from_numpy(np.ascontiguousarray(array).copy())


# ---------------------------------------------------------------------------------------
# Running one case
# ---------------------------------------------------------------------------------------


def model_flags(options):
    """The model options given on our command line, as `resnet run` flags."""
    flags = []
    for flag, value in (("--num-classes", getattr(options, "num_classes", None)),
                        ("--in-channels", getattr(options, "in_channels", None)),
                        ("--shortcut", getattr(options, "shortcut", None))):
        if value is not None:
            flags += [flag, str(value)]
    return flags


def build_reference(model_name, options):
    """ref.build_model with the model options given on our command line."""
    return ref.build_model(model_name, num_classes=getattr(options, "num_classes", None),
                           in_channels=getattr(options, "in_channels", None) or 3,
                           shortcut=getattr(options, "shortcut", None) or "A")


def run_command(binary_cmd, model_name, files, mode, flags=()):
    """The argv of `resnet run` for one mode, per the command-line contract."""
    argv = list(binary_cmd) + [
        "run", "--model", model_name, "--weights", str(files["weights"]),
        "--input", str(files["input"]), "--output", str(files[f"output_{mode}"])]
    argv += list(flags)
    if mode == "train":
        argv.append("--train")
    argv += ["--grad-output", str(files[f"grad_output_{mode}"]),
             "--grad-input", str(files[f"grad_input_{mode}"]),
             "--grads", str(files[f"grads_{mode}"]),
             "--state-out", str(files[f"state_{mode}"])]
    return argv


def case_files(work_dir, modes):
    """Paths of every file one case reads or writes, keyed by role."""
    files = {"weights": work_dir / "W.safetensors", "input": work_dir / "X.npy"}
    for mode in modes:
        files[f"grad_output_{mode}"] = work_dir / f"DY_{mode}.npy"
        files[f"output_{mode}"] = work_dir / f"Y_{mode}.npy"
        files[f"grad_input_{mode}"] = work_dir / f"DX_{mode}.npy"
        files[f"grads_{mode}"] = work_dir / f"G_{mode}.safetensors"
        files[f"state_{mode}"] = work_dir / f"S_{mode}.safetensors"
    return files


def dead_output(model, x):
    """True if the model's output is all zero in eval or train mode (a useless case)."""
    with torch.no_grad():
        for train in (False, True):
            probe = copy.deepcopy(model).train(train)
            try:
                if not probe(x).any():
                    return True
            except (ValueError, RuntimeError):
                pass  # training-mode BN undefined here; check_mode reports it
    return False


def prepare_inputs(model_name, shape, seed, modes, files, options=None):
    """Write random weights, input and per-mode output gradients; return (model, weights).

    Weights are redrawn (deterministically) while the output is all zero, e.g. a single
    output channel that random BN parameters push below zero everywhere.
    """
    gen = torch.Generator().manual_seed(seed)
    model = build_reference(model_name, options)
    for _ in range(MAX_REDRAWS):
        ref.randomize_model(model, gen)
        x = torch.randn(shape, generator=gen)
        if not dead_output(model, x):
            break
    else:
        print(f"  note: output stays all zero after {MAX_REDRAWS} draws; checking anyway")
    weights = OrderedDict((k, v.detach().clone()) for k, v in model.state_dict().items())
    ref.save_safetensors(files["weights"], weights, metadata={"model": model_name})
    ref.save_npy(files["input"], x)
    with torch.no_grad():
        output_shape = model.eval()(x).shape
    for mode in modes:
        ref.save_npy(files[f"grad_output_{mode}"], torch.randn(output_shape, generator=gen))
    return model, weights


def run_binary(report, label, argv, timeout):
    """Run `resnet run`; on failure (exit status, timeout, cannot start) record a FAIL."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        report.add(False, f"  {label}: resnet run timed out after {timeout} s")
        return False
    except OSError as err:
        report.add(False, f"  {label}: cannot start resnet: {err}")
        return False
    if proc.returncode != 0:
        report.add(False, f"  {label}: resnet run exited {proc.returncode}: "
                          f"{proc.stderr.strip()[-2000:]}\n    command: {shlex.join(argv)}")
        return False
    return True


def check_mode(report, binary_cmd, model_name, model, weights, files, mode, options):
    """Run ours and PyTorch (float32, and float64 for noise) for one mode; compare all."""
    x = ref.load_npy(files["input"])
    grad_output = ref.load_npy(files[f"grad_output_{mode}"])
    train = mode == "train"
    model.load_state_dict(weights)
    try:
        exact = ref.float64_pass(model, x, grad_output, train)
        output, grad_input, grads, state = ref.reference_pass(model, x, grad_output, train)
    except (ValueError, RuntimeError) as err:
        print(f"  {mode}: SKIP, PyTorch cannot run this case: {err}")
        return
    if not run_binary(report, mode, run_command(binary_cmd, model_name, files, mode,
                                                model_flags(options)), options.timeout):
        return
    strict = options.strict
    exact_output, exact_grad_input, exact_grads, exact_state = exact
    ours = load_our_npy(report, f"{mode} output", files[f"output_{mode}"])
    if ours is not None:
        compare_tensor(report, f"{mode} output", ours, output, exact_output, strict)
    ours = load_our_npy(report, f"{mode} grad_input", files[f"grad_input_{mode}"])
    if ours is not None:
        compare_tensor(report, f"{mode} grad_input", ours, grad_input, exact_grad_input,
                       strict)
    compare_dicts(report, f"{mode} grad ", ref.load_safetensors(files[f"grads_{mode}"]),
                  grads, exact_grads, strict)
    compare_dicts(report, f"{mode} state ", ref.load_safetensors(files[f"state_{mode}"]),
                  state, exact_state, strict)
    if mode == "eval":
        # Without --grad-output, eval runs the no-gradient path (each module by itself).
        infer_path = files["output_eval"].with_name("Y_infer.npy")
        argv = list(binary_cmd) + [
            "run", "--model", model_name, "--weights", str(files["weights"]),
            "--input", str(files["input"]), "--output", str(infer_path)]
        argv += model_flags(options)
        if not run_binary(report, "infer", argv, options.timeout):
            return
        ours = load_our_npy(report, "infer output", infer_path)
        if ours is not None:
            compare_tensor(report, "infer output (no gradient)", ours, output, exact_output, strict)


def check_case(report, binary_cmd, model_name, shape, seed, options):
    """Check one (model, shape, seed) in every mode, in a temporary or kept directory."""
    print(f"case {model_name} input {','.join(map(str, shape))} seed {seed}   "
          f"(reproduce: --model {model_name} --shape {','.join(map(str, shape))} "
          f"--seed {seed}{''.join(' ' + f for f in model_flags(options))})", flush=True)
    with tempfile.TemporaryDirectory(prefix="resnet-check-") as tmp:
        work_dir = Path(tmp)
        if options.keep is not None:
            work_dir = options.keep / f"{ref.file_stem(model_name)}_seed{seed}"
            work_dir.mkdir(parents=True, exist_ok=True)
        files = case_files(work_dir, options.modes)
        model, weights = prepare_inputs(model_name, shape, seed, options.modes, files,
                                        options)
        for mode in options.modes:
            check_mode(report, binary_cmd, model_name, model, weights, files, mode, options)


def draw_cases(args):
    """The list of (model, shape, seed) to check, from the command-line options."""
    base_seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    cases = []
    for trial in range(args.trials):
        seed = base_seed + trial
        rng = random.Random(seed)
        if args.model is None:
            model_name, shape = random_block_case(rng)
            if args.shape is not None:
                raise SystemExit("--shape needs --model")
        else:
            model_name = args.model
            shape = args.shape or default_shape(model_name, rng, args.in_channels)
        cases.append((model_name, shape, seed))
    return cases


def run_checks(args, binary_cmd, quiet=False):
    """Check every drawn case; return the Report."""
    report = Report(quiet=quiet)
    for model_name, shape, seed in draw_cases(args):
        check_case(report, binary_cmd, model_name, shape, seed, args)
    return report


# ---------------------------------------------------------------------------------------


def parse_args(argv):
    """Command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(
        description="Compare `resnet run` with PyTorch on random cases (numerics contract).")
    parser.add_argument("--resnet", type=Path, default=DEFAULT_BINARY,
                        help="the resnet binary (default: build/resnet in this repository)")
    parser.add_argument("--model", help="MODEL string, e.g. block:5,8,2 or resnet18 "
                                        "(default: random seed blocks)")
    parser.add_argument("--shape", type=parse_shape, help="input shape N,C,H,W "
                        "(default: random for blocks, 2,3,64,64 for torchvision models)")
    parser.add_argument("--seed", type=int, help="seed of the first case (default: random)")
    parser.add_argument("--modes", default="eval,train",
                        help="comma-separated subset of eval,train (default: both)")
    parser.add_argument("--trials", type=int, default=1,
                        help="number of cases, seeds SEED, SEED+1, ... (default 1)")
    parser.add_argument("--keep", type=Path, help="write the case files under this "
                                                  "directory instead of a temporary one")
    parser.add_argument("--timeout", type=float, default=600,
                        help="seconds allowed per resnet run (default 600)")
    parser.add_argument("--strict", action="store_true",
                        help="no float64 fallback for ill-conditioned tensors")
    parser.add_argument("--num-classes", type=int, help="classifier outputs (default: the "
                        "family's, 1000 for torchvision names, 10 for CIFAR ones)")
    parser.add_argument("--in-channels", type=int,
                        help="input image channels (default 3)")
    parser.add_argument("--shortcut", choices=["A", "B"],
                        help="CIFAR networks: A = zero-padded identity (default), "
                             "B = 1x1 conv projection")
    parser.add_argument("--self-test", action="store_true",
                        help="check this script with a PyTorch stand-in for the binary")
    args = parser.parse_args(argv)
    args.modes = [m for m in args.modes.split(",") if m]
    if not args.modes or any(m not in ("eval", "train") for m in args.modes):
        parser.error("--modes: expected a comma-separated subset of eval,train")
    if args.trials < 1:
        parser.error("--trials must be >= 1")
    for name in ("num_classes", "in_channels"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.model is not None:
        try:
            build_reference(args.model, args)
        except ValueError as err:
            parser.error(str(err))
    return args


def main(argv):
    """Entry point; returns the exit status."""
    args = parse_args(argv)
    ref.setup_torch()
    if args.self_test:
        from check_against_torch_self_test import self_test  # it imports this module
        return self_test(args)
    binary = args.resnet.resolve()
    if not binary.is_file() or not os.access(binary, os.X_OK):
        print(f"error: resnet binary not found or not executable at {binary}; build it or "
              f"pass --resnet PATH", file=sys.stderr)
        return 2
    report = run_checks(args, [str(binary)])
    print(f"{report.passed} passed, {report.failed} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
