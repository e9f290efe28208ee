#!/usr/bin/env python3
"""The self-test of tools/check_against_torch.py (its --self-test option).

Run as a program, this file is a stand-in for `resnet run` (fake_resnet): it reads the
case files, runs PyTorch in float64 and writes the results. The self-test checks that the
comparison passes that stand-in, and fails it when RESNET_FAKE_PERTURB makes it wrong.
"""

import argparse
import os
import sys
from collections import OrderedDict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch_reference as ref  # noqa: E402
from check_against_torch import build_reference, run_checks  # noqa: E402

PERTURB_ENV = "RESNET_FAKE_PERTURB"  # relative error the stand-in adds (negative control)


def forward_only(model, x, train):
    """One forward pass without gradients: (output, state_dict after the pass)."""
    model.train(train)
    with torch.no_grad():
        output = model(x)
    return output, OrderedDict((k, v.detach().clone()) for k, v in model.state_dict().items())


def fake_resnet(argv):
    """Stand-in for `resnet run`: reads our files, runs PyTorch in float64, writes results.

    Follows the command-line contract: --grad-output needs --grad-input and --grads,
    --state-out is optional. With the environment variable RESNET_FAKE_PERTURB=p it maps
    every float result t to t + p * (|t| + 1) (so exact zeros move too) and adds 1 to
    num_batches_tracked, so the comparison must report FAIL.
    """
    parser = argparse.ArgumentParser(prog="fake resnet")
    parser.add_argument("command", choices=["run"])
    for option in ("--model", "--weights", "--input", "--output"):
        parser.add_argument(option, required=True)
    for option in ("--grad-output", "--grad-input", "--grads", "--state-out"):
        parser.add_argument(option)
    parser.add_argument("--train", action="store_true")
    parser.add_argument("--num-classes", type=int)
    parser.add_argument("--in-channels", type=int)
    parser.add_argument("--shortcut", choices=["A", "B"])
    args = parser.parse_args(argv)
    if args.grad_output is not None and (args.grad_input is None or args.grads is None):
        parser.error("--grad-output needs --grad-input and --grads")
    ref.setup_torch()
    perturb = float(os.environ.get(PERTURB_ENV, "0"))
    model = build_reference(args.model, args)
    model.load_state_dict(ref.load_safetensors(args.weights))
    model.double()
    x = ref.load_npy(args.input).double()

    def as_written(tensor):
        """float64 -> float32 (perturbed if asked); integers get +1 if perturbing."""
        if tensor.is_floating_point():
            return (tensor + perturb * (tensor.abs() + 1)).float()
        return tensor + 1 if perturb else tensor

    def as_written_dict(tensors):
        """as_written over a name -> tensor mapping."""
        return OrderedDict((k, as_written(v)) for k, v in tensors.items())

    if args.grad_output is None:
        output, state = forward_only(model, x, args.train)
    else:
        output, grad_input, grads, state = ref.reference_pass(
            model, x, ref.load_npy(args.grad_output).double(), train=args.train)
        ref.save_npy(args.grad_input, as_written(grad_input))
        ref.save_safetensors(args.grads, as_written_dict(grads))
    ref.save_npy(args.output, as_written(output))
    if args.state_out is not None:
        ref.save_safetensors(args.state_out, as_written_dict(state))
    return 0


def self_test(args):
    """Validate the plumbing: float64 stand-in must PASS; a perturbed stand-in must FAIL.

    The honest run also exercises the ill-conditioned rule: the stand-in's float64 values
    differ from PyTorch's float32 noise wherever a tensor is exactly zero in exact math.
    """
    stand_in = [sys.executable, str(Path(__file__).resolve())]
    if args.model is None and args.trials == 1:
        args.trials = 3
    print("self-test 1/2: stand-in binary = this script in float64 (expect PASS)")
    honest = run_checks(args, stand_in)
    print("self-test 2/2: stand-in perturbed by 1e-3, --strict (expect every check to FAIL)")
    os.environ[PERTURB_ENV] = "1e-3"
    strict = args.strict
    args.strict = True  # a noise tensor's perturbation is invisible against float64
    try:
        perturbed = run_checks(args, stand_in, quiet=True)
    finally:
        del os.environ[PERTURB_ENV]
        args.strict = strict
    print(f"  perturbed: {perturbed.failed} of {perturbed.failed + perturbed.passed} "
          f"checks flagged FAIL")
    ok = honest.failed == 0 and honest.passed > 0 and perturbed.passed == 0 \
        and perturbed.failed > 0
    print(f"self-test {'PASS' if ok else 'FAIL'}: {honest.passed} passed honest checks, "
          f"{perturbed.failed} caught perturbations")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(fake_resnet(sys.argv[1:]))
