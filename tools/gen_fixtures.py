#!/usr/bin/env python3
"""Write the PyTorch reference fixtures under tests/fixtures/ (deterministic, fixed seeds).

Usage: /usr/bin/python3 tools/gen_fixtures.py [--out tests/fixtures]

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

tests/fixtures/print/ holds <stem>.txt (exactly str(model) + "\\n"), <stem>.keys.txt
(state_dict keys, one per line) and index.json (stem -> model string).
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

# (case directory, MODEL string, input shape N,C,H,W, seed)
CASES = (
    ("block_5_5_1", "block:5,5,1", (3, 5, 7, 9), 101),   # identity shortcut
    ("block_5_8_2", "block:5,8,2", (3, 5, 7, 9), 102),   # projection, stride 2, odd sizes
    ("block_4_6_1", "block:4,6,1", (2, 4, 6, 5), 103),   # projection, stride 1, more channels
    ("block_3_3_2", "block:3,3,2", (2, 3, 8, 7), 104),   # projection: stride 2, equal channels
)

PRINT_MODELS = ("block:64,128,2", "block:64,64", "block:5,8,2", "block:3,3,2")

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
    """Write print/<stem>.txt, print/<stem>.keys.txt and print/index.json."""
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
    (print_dir / "index.json").write_text(json.dumps(index, indent=2) + "\n")


def main():
    """Regenerate every fixture directory from scratch."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_out = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
    parser.add_argument("--out", type=Path, default=default_out,
                        help="fixture root (default: tests/fixtures of this repository)")
    args = parser.parse_args()
    ref.setup_torch()
    for case, model_name, shape, seed in CASES:
        if (args.out / case).exists():
            shutil.rmtree(args.out / case)
        write_case(args.out, case, model_name, shape, seed)
        print(f"wrote {args.out / case}  ({model_name}, input {list(shape)})")
    write_prints(args.out)
    print(f"wrote {args.out / 'print'}  ({len(PRINT_MODELS)} models)")


if __name__ == "__main__":
    main()
