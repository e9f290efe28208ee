#!/usr/bin/env python3
"""Write the PyTorch reference fixtures under tests/fixtures/ (deterministic, fixed seeds).

Usage: /usr/bin/python3 tools/gen_fixtures.py [--out tests/fixtures]
                                              [--only blocks|zoo|print] ...

For each case in CASES, tests/fixtures/<case>/ holds:
  case.json                      model string, shapes, seed, file list, conditioning
  input.npy                      x (float32, NCHW)
  weights.safetensors            full state_dict before the pass (num_batches_tracked I64)
  output_<mode>.npy              model(x)                        for mode in eval, train
  grad_output_<mode>.npy         random dy fed to backward
  grad_input_<mode>.npy          dL/dx
  grads_<mode>.safetensors       every parameter's .grad under its state_dict name
  state_<mode>.safetensors       state_dict after the pass (train: running stats moved)
Both modes start from weights.safetensors; eval takes its gradient with model.eval().
Every case is checked to be well-conditioned: PyTorch's float32 results lie within a
tenth of the contract's tolerance of its float64 results.

Zoo cases (ZOO_CASES: whole networks, too big to store weights and gradients): weights,
input and output gradient come from the deterministic scheme of deterministic_values.py
(fill_deterministic; C++: tests/support/deterministic_weights.h), so nothing of them is
stored. tests/fixtures/<case>/ holds:
  case.json                      model, options, seed, shapes, parameter count, scheme,
                                 tolerance, conditioning, file list
  output_<mode>.npy              model(x)                         for mode in eval, train
  grad_input_<mode>.npy          dL/dx for dy = deterministic "grad_output"
  digest_<mode>.json             {"grads": {name: digest}, "buffers": {name: digest}}:
                                 every parameter's gradient and (train only) every buffer
                                 (running statistics, num_batches_tracked) after the pass,
                                 each as {shape, numel, sum, sumsq, dot, max_abs, samples:
                                 [[flat index, value], ...]} (see tensor_digest).
                                 Parameters, and in eval mode buffers, do not change in a
                                 pass: a test compares them with a fresh deterministic
                                 fill; case.json's state_dict_sums pins that fill to
                                 PyTorch's.
Eval mode: model.eval(), forward + backward; train mode: model.train(), one forward +
backward (running statistics move). Both start from the deterministic weights. Each case
is checked to be well-conditioned: no ReLU input or max-pool runner-up within PyTorch's
own float32 rounding of its kink (kink_safety), PyTorch float32 within TOLERANCE / 10 of
float64 on every tensor but gradients that are zero in exact arithmetic (marked
"ill_conditioned" in the digest and compared with float64, check_zoo_pass), and digests
fair (float32 digests within a tenth of the bounds the C++ test applies, digest_errors).
`--scan-seeds [FIRST-]LAST` prints these numbers for a range of seeds, to pick one.

tests/fixtures/print/ holds <stem>.txt (exactly str(model) + "\\n"), <stem>.keys.txt
(state_dict keys, one per line), index.json (stem -> the `resnet summary` arguments that
print it: a MODEL string, then options if any, e.g. "resnet20 --shortcut B") and
params.json (stem -> number of parameters, for the zoo's models). CIFAR networks are
printed with their defaults: 3 input channels, 10 classes, shortcut A.
"""

import argparse
import json
import shutil
import sys
from collections import OrderedDict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch_reference as ref  # noqa: E402
from fixture_checks import (  # noqa: E402
    DIGEST_PROBE_SEED, DIGEST_SAMPLES, ILL_CONDITIONED_SLACK, KINK_SAFETY, NOISE_FRACTION,
    check_zoo_pass, kink_safety, pass_digests)

# (case directory, MODEL string, input shape N,C,H,W, seed)
CASES = (
    ("block_5_5_1", "block:5,5,1", (3, 5, 7, 9), 101),   # identity shortcut
    ("block_5_8_2", "block:5,8,2", (3, 5, 7, 9), 102),   # projection, stride 2, odd sizes
    ("block_4_6_1", "block:4,6,1", (2, 4, 6, 5), 103),   # projection, stride 1, more channels
    ("block_3_3_2", "block:3,3,2", (2, 3, 8, 7), 104),   # projection: stride 2, equal channels
)

PRINT_MODELS = ("block:64,128,2", "block:64,64", "block:5,8,2", "block:3,3,2")

# Whole networks: (case directory, MODEL string, options, input shape N,C,H,W, seed).
# options: keyword arguments of ref.build_model (num_classes None = the family's default).
# Shapes and seeds are chosen for conditioning (write_zoo_case refuses a case otherwise;
# --scan-seeds finds candidates). Training-mode batch norm in ResNet-50's layer4 needs
# about 16 values per channel (batch 2 at 64x64 leaves 8, and float32 then misses float64
# by 1.5e-5 of the largest gradient), while every ReLU input more makes a kink within
# rounding likelier: 4x3x33x33 gives layer4 2x2 maps and a third of the ReLU inputs of
# 4x3x64x64 (odd sizes also exercise padding and ceil-mode arithmetic). The seeds are the
# ones --scan-seeds found with the largest kink safety in both modes.
ZOO_CASES = (
    ("resnet18", "resnet18", {}, (2, 3, 64, 64), 3),
    ("resnet50", "resnet50", {}, (4, 3, 33, 33), 2),
    ("resnext50_32x4d", "resnext50_32x4d", {}, (4, 3, 33, 33), 32),
    ("resnet20", "resnet20", {}, (4, 3, 32, 32), 5),
    ("resnet20_B", "resnet20", {"shortcut": "B"}, (4, 3, 32, 32), 2),
    ("plain20", "plain20", {}, (4, 3, 32, 32), 3),
    ("resnet50_batch1", "resnet50", {}, (1, 3, 64, 64), 5),
)

# Cases judged against float64 wherever PyTorch's float32 misses it by more than a tenth of
# the tolerance (fixture_checks.check_zoo_pass): training-mode batch norms that see few
# values per channel amplify rounding error. ResNet-50 at batch 1 and 64x64 leaves 4 values
# per channel in layer4; with seed 5, 153 of its gradients and buffers are judged against
# float64. (The deterministic weights keep residual branches small, so even Winograd's
# error stays within this case's bounds; random weights do not, see
# kMinBnValuesForWinograd in src/nn/resnet.cpp.) Training mode only: evaluation normalizes
# with running statistics, and this case is about batch statistics.
FLOAT64_JUDGED = ("resnet50_batch1",)


def case_modes(case):
    """The modes a zoo case is written for (its case.json "modes")."""
    return ("train",) if case in FLOAT64_JUDGED else MODES

# Printed structure of every zoo model: (stem, MODEL string, options).
ZOO_PRINT_MODELS = tuple((name, name, {}) for name in ref.TORCHVISION_NAMES) + tuple(
    (name, name, {}) for name in ref.CIFAR_NAMES) + (
    ("resnet20_B", "resnet20", {"shortcut": "B"}),
    ("resnet18_in1_classes10", "resnet18", {"num_classes": 10, "in_channels": 1}),
    ("resnet20_in1_classes100", "resnet20", {"num_classes": 100, "in_channels": 1}),
)


MODES = ("eval", "train")


def case_files():
    """The file names every case directory contains, in a stable order."""
    names = ["case.json", "input.npy", "weights.safetensors"]
    for mode in MODES:
        names += [f"output_{mode}.npy", f"grad_output_{mode}.npy", f"grad_input_{mode}.npy",
                  f"grads_{mode}.safetensors", f"state_{mode}.safetensors"]
    return names


def worst_rounding_ratio(result32, result64):
    """Largest max|f32 - f64| / max|f32| over every float tensor of a reference pass."""
    worst = 0.0
    for t32, t64 in zip(flatten(result32), flatten(result64)):
        if t32.is_floating_point() and t32.numel():
            scale = t32.double().abs().max().item()
            diff = (t32.double() - t64).abs().max().item()
            worst = max(worst, diff / scale if scale > 0 else (0.0 if diff == 0 else 1.0))
    return worst


def flatten(result):
    """(output, grad_input, grads, state) -> list of tensors in a fixed order."""
    output, grad_input, grads, state = result
    return [output, grad_input] + list(grads.values()) + list(state.values())


def write_case(out_dir, case, model_name, shape, seed):
    """Generate one case directory: random model/input, then an eval and a train pass."""
    case_dir = out_dir / case
    case_dir.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    model = ref.build_model(model_name)
    ref.randomize_model(model, gen)
    weights = OrderedDict((k, v.detach().clone()) for k, v in model.state_dict().items())
    x = torch.randn(shape, generator=gen)
    ref.save_npy(case_dir / "input.npy", x)
    ref.save_safetensors(case_dir / "weights.safetensors", weights,
                         metadata={"model": model_name})
    output_shape, conditioning = None, OrderedDict()
    for mode in MODES:
        model.load_state_dict(weights)
        with torch.no_grad():
            output_shape = tuple(model.eval()(x).shape)
        grad_output = torch.randn(output_shape, generator=gen)
        train = mode == "train"
        exact = ref.float64_pass(model, x, grad_output, train)
        result = ref.reference_pass(model, x, grad_output, train)
        conditioning[mode] = worst_rounding_ratio(result, exact)
        if conditioning[mode] > ref.TOLERANCE / 10:
            raise SystemExit(f"{case} {mode}: PyTorch float32 is {conditioning[mode]:.1e} "
                             f"off float64; pick a better-conditioned case or seed")
        output, grad_input, grads, state = result
        ref.save_npy(case_dir / f"output_{mode}.npy", output)
        ref.save_npy(case_dir / f"grad_output_{mode}.npy", grad_output)
        ref.save_npy(case_dir / f"grad_input_{mode}.npy", grad_input)
        ref.save_safetensors(case_dir / f"grads_{mode}.safetensors", grads)
        ref.save_safetensors(case_dir / f"state_{mode}.safetensors", state)
    info = OrderedDict([
        ("model", model_name),
        ("input_shape", list(shape)),
        ("output_shape", list(output_shape)),
        ("seed", seed),
        ("modes", list(MODES)),
        ("tolerance", ref.TOLERANCE),
        ("torch_f32_vs_f64_worst_ratio", conditioning),
        ("state_dict_keys", list(weights.keys())),
        ("parameter_names", [name for name, _ in model.named_parameters()]),
        ("files", case_files()),
        ("torch_version", torch.__version__),
    ])
    (case_dir / "case.json").write_text(json.dumps(info, indent=2) + "\n")


def write_prints(out_dir):
    """Write print/<stem>.txt, print/<stem>.keys.txt and print/index.json (blocks, then
    every zoo model: see write_zoo_prints)."""
    print_dir = out_dir / "print"
    print_dir.mkdir(parents=True, exist_ok=True)
    index = OrderedDict()
    for model_name in PRINT_MODELS:
        stem = ref.file_stem(model_name)
        model = ref.build_model(model_name)
        (print_dir / f"{stem}.txt").write_text(str(model) + "\n")
        (print_dir / f"{stem}.keys.txt").write_text(
            "".join(key + "\n" for key in model.state_dict().keys()))
        index[stem] = model_name
    index.update(write_zoo_prints(out_dir))
    (print_dir / "index.json").write_text(json.dumps(index, indent=2) + "\n")


# ---------------------------------------------------------------------------------------
# Zoo cases: deterministic weights, digests instead of full tensors
# ---------------------------------------------------------------------------------------


def resolved_options(model_name, options):
    """The ModelOptions a C++ test builds the case with (family defaults filled in)."""
    cifar = model_name in ref.CIFAR_NAMES
    return OrderedDict([
        ("num_classes", options.get("num_classes") or (ref.CIFAR_NUM_CLASSES if cifar
                                                       else ref.TORCHVISION_NUM_CLASSES)),
        ("in_channels", options.get("in_channels", 3)),
        ("cifar_shortcut", options.get("shortcut", "A")),
    ])


def summary_args(model_name, options):
    """The `resnet summary` arguments for a MODEL string and build_model options."""
    words = [model_name]
    if options.get("num_classes"):
        words += ["--num-classes", str(options["num_classes"])]
    if options.get("in_channels", 3) != 3:
        words += ["--in-channels", str(options["in_channels"])]
    if options.get("shortcut", "A") != "A":
        words += ["--shortcut", options["shortcut"]]
    return " ".join(words)


def write_zoo_case(out_dir, case, model_name, options, shape, seed):
    """Generate one zoo case directory (see the module docstring)."""
    case_dir = out_dir / case
    case_dir.mkdir(parents=True, exist_ok=True)
    model = ref.build_model(model_name, **options)
    ref.fill_deterministic(model, seed)
    weights = OrderedDict((k, v.detach().clone()) for k, v in model.state_dict().items())
    x = ref.deterministic_tensor(seed, "input", shape)
    with torch.no_grad():
        output_shape = tuple(model.eval()(x).shape)
    grad_output = ref.deterministic_tensor(seed, "grad_output", output_shape)
    conditioning, digest_fairness, kinks, noise, judge = (OrderedDict() for _ in range(5))
    for mode in case_modes(case):
        model.load_state_dict(weights)
        train = mode == "train"
        safety, where = kink_safety(model, x, train)
        kinks[mode] = OrderedDict([("safety", safety), ("at", where)])
        if safety < KINK_SAFETY:
            raise SystemExit(f"{case} {mode}: an input of {where} lies within "
                             f"{safety:.2f} x PyTorch's float32 rounding of its kink; pick "
                             f"another seed (tools/gen_fixtures.py --scan-seeds)")
        exact = ref.float64_pass(model, x, grad_output, train)
        result = ref.reference_pass(model, x, grad_output, train)
        if not train:
            for name, tensor in result[3].items():
                if not torch.equal(tensor, weights[name]):
                    raise SystemExit(f"{case} eval: PyTorch changed {name} in eval mode")
        digests = pass_digests(result, train)
        exact_digests = pass_digests(exact, train)
        conditioning[mode], digest_fairness[mode], noise[mode], judged = check_zoo_pass(
            f"{case} {mode}", result, exact, digests, exact_digests, case in FLOAT64_JUDGED)
        output, grad_input, _, _ = result
        # Judged against float64: store that (as float32), and PyTorch's float32 error.
        if "output" in judged:
            output = exact[0].float()
            judge[f"output_{mode}"] = judged["output"]
        if "grad_input" in judged:
            grad_input = exact[1].float()
            judge[f"grad_input_{mode}"] = judged["grad_input"]
        ref.save_npy(case_dir / f"output_{mode}.npy", output)
        ref.save_npy(case_dir / f"grad_input_{mode}.npy", grad_input)
        (case_dir / f"digest_{mode}.json").write_text(
            json.dumps(digests, separators=(",", ":")) + "\n")
    info = OrderedDict([
        ("model", model_name),
        ("options", resolved_options(model_name, options)),
        ("summary_args", summary_args(model_name, options)),
        ("input_shape", list(shape)),
        ("output_shape", list(output_shape)),
        ("seed", seed),
        ("weights", "deterministic: torch_reference.fill_deterministic(model, seed); C++ "
                    "tests/support/deterministic_weights.h fill_deterministic"),
        ("input", "deterministic_tensor(seed, \"input\", input_shape)"),
        ("grad_output", "deterministic_tensor(seed, \"grad_output\", output_shape), "
                        "both modes"),
        ("parameter_count", sum(p.numel() for p in model.parameters())),
        ("state_dict_sums", OrderedDict((k, float(v.double().sum()))
                                        for k, v in weights.items())),
        ("modes", list(case_modes(case))),
        ("tolerance", ref.TOLERANCE),
        ("digest", OrderedDict([("samples", DIGEST_SAMPLES),
                                ("probe_seed", DIGEST_PROBE_SEED),
                                ("probe_name", "probe:<name>")])),
        ("torch_f32_vs_f64_worst_ratio", conditioning),
        ("torch_f32_digest_vs_f64_worst_fraction_of_bound", digest_fairness),
        ("kink_safety", kinks),
        ("ill_conditioned", noise),
        ("ill_conditioned_rule", OrderedDict([("noise_fraction", NOISE_FRACTION),
                                              ("slack", ILL_CONDITIONED_SLACK)])),
        ("float64_judge", judge),
        ("files", ["case.json"] + [f"{kind}_{mode}.{ext}" for mode in case_modes(case)
                                   for kind, ext in (("output", "npy"), ("grad_input", "npy"),
                                                     ("digest", "json"))]),
        ("torch_version", torch.__version__),
    ])
    (case_dir / "case.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def scan_seeds(case, model_name, options, shape, seeds):
    """Print, for each seed in `seeds`, whether `case` would pass the conditioning checks."""
    for seed in seeds:
        model = ref.build_model(model_name, **options)
        ref.fill_deterministic(model, seed)
        x = ref.deterministic_tensor(seed, "input", shape)
        with torch.no_grad():
            grad_output = ref.deterministic_tensor(seed, "grad_output",
                                                   tuple(model.eval()(x).shape))
        weights = OrderedDict((k, v.detach().clone()) for k, v in model.state_dict().items())
        line = []
        for mode in case_modes(case):
            model.load_state_dict(weights)
            train = mode == "train"
            safety, where = kink_safety(model, x, train)
            verdict = f"kink safety {safety:.2f} ({where})"
            if safety >= KINK_SAFETY:
                exact = ref.float64_pass(model, x, grad_output, train)
                result = ref.reference_pass(model, x, grad_output, train)
                try:
                    worst, _, noise, _ = check_zoo_pass(mode, result, exact,
                                                        pass_digests(result, train),
                                                        pass_digests(exact, train),
                                                        case in FLOAT64_JUDGED)
                    verdict += f", f32 vs f64 {worst:.1e}, {len(noise)} ill-conditioned"
                except SystemExit as refusal:
                    verdict += f", refused: {refusal}"
            line.append(f"{mode}: {verdict}")
        print(f"{case} seed {seed}: " + "; ".join(line), flush=True)


def write_zoo_prints(out_dir):
    """Add the zoo's models to print/: <stem>.txt, <stem>.keys.txt, params.json.

    Returns the index entries (stem -> summary arguments) for index.json.
    """
    print_dir = out_dir / "print"
    print_dir.mkdir(parents=True, exist_ok=True)
    index, params = OrderedDict(), OrderedDict()
    for stem, model_name, options in ZOO_PRINT_MODELS:
        model = ref.build_model(model_name, **options)
        (print_dir / f"{stem}.txt").write_text(str(model) + "\n")
        (print_dir / f"{stem}.keys.txt").write_text(
            "".join(key + "\n" for key in model.state_dict().keys()))
        index[stem] = summary_args(model_name, options)
        params[stem] = sum(p.numel() for p in model.parameters())
    (print_dir / "params.json").write_text(json.dumps(params, indent=2) + "\n")
    return index


def main():
    """Regenerate every fixture directory from scratch."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_out = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
    parser.add_argument("--out", type=Path, default=default_out,
                        help="fixture root (default: tests/fixtures of this repository)")
    parser.add_argument("--only", choices=("blocks", "zoo", "print"), action="append",
                        help="regenerate only these parts (repeatable; default: all)")
    parser.add_argument("--case", action="append",
                        help="with --only zoo: only these ZOO_CASES directories")
    parser.add_argument("--scan-seeds", metavar="[FIRST-]LAST",
                        help="write nothing; print the conditioning of seeds FIRST (default "
                             "1) to LAST for the zoo cases (or those named by --case)")
    args = parser.parse_args()
    if args.scan_seeds:
        first, _, last = args.scan_seeds.rpartition("-")
        seeds = range(int(first or 1), int(last) + 1)
        ref.setup_torch()
        for case, model_name, options, shape, _ in ZOO_CASES:
            if not args.case or case in args.case:
                scan_seeds(case, model_name, options, shape, seeds)
        return
    parts = set(args.only or ("blocks", "zoo", "print"))
    ref.setup_torch()
    if "blocks" in parts:
        for case, model_name, shape, seed in CASES:
            if (args.out / case).exists():
                shutil.rmtree(args.out / case)
            write_case(args.out, case, model_name, shape, seed)
            print(f"wrote {args.out / case}  ({model_name}, input {list(shape)})")
    if "zoo" in parts:
        for case, model_name, options, shape, seed in ZOO_CASES:
            if args.case and case not in args.case:
                continue
            if (args.out / case).exists():
                shutil.rmtree(args.out / case)
            info = write_zoo_case(args.out, case, model_name, options, shape, seed)
            print(f"wrote {args.out / case}  ({info['summary_args']}, input {list(shape)}, "
                  f"f32 vs f64 {dict(info['torch_f32_vs_f64_worst_ratio'])})", flush=True)
    if "print" in parts:
        write_prints(args.out)
        print(f"wrote {args.out / 'print'}  "
              f"({len(PRINT_MODELS) + len(ZOO_PRINT_MODELS)} models)")


if __name__ == "__main__":
    main()
