#!/usr/bin/env python3
"""Write the torchvision interop fixtures under tests/fixtures/interop/ (deterministic).

Usage: /usr/bin/python3 tools/gen_interop_fixtures.py [--out tests/fixtures/interop]

A real torchvision state_dict is far too big to commit (resnet18: 46 MB), so the fixtures
pin what PyTorch produces in small files, and the C++ tests rebuild the big ones:

  <model>.state_dict.json   for resnet18, resnet50 and resnext50_32x4d: every entry of
                            torchvision.models.<model>().state_dict(), in PyTorch's order,
                            as [name, safetensors dtype, shape, fill rule]. The fill rule is
                            the deterministic scheme's (torch_reference.deterministic_rule),
                            so a test can write exactly this state_dict, filled exactly as
                            torch_reference.fill_deterministic fills the torchvision model,
                            without building one. The zoo fixtures (tests/fixtures/resnet18:
                            case.json, output_eval.npy) hold PyTorch's output for that fill;
                            this script checks that the listing reproduces it.
  resnet20_torch.safetensors  a state_dict written by PyTorch and a Python safetensors
  resnet20_input.npy          writer, not by us: torch_reference's CIFAR resnet20 (torchvision's
  resnet20_output.npy         BasicBlock structure) with random weights and running statistics
  resnet20_case.json          moved by three training-mode passes, saved with header keys in
                            alphabetical order (not state_dict order) and metadata
                            {"format": "pt"}; the input and PyTorch's eval-mode output.
  preprocess/*.png          small generated images: RGB landscape 301x233, RGBA portrait
                            457x613, grayscale 37x29
  preprocess/cases.json     per case: image, resize (shorter side), crop [h, w], whether
                            ImageNet's Normalize follows, and the expected file
  preprocess/*.npy          torchvision's output for each case, after ToTensor, stored as
                            uint8 (value * 255): ToTensor's output is exactly byte / 255, which
                            this script checks, so nothing is lost and the files are a quarter
                            of the float32 size. For ImageNet cases it also checks that
                            Normalize's output equals (byte / 255 - mean) / std in float32.
  predict_resnet18.json     torchvision resnet18 under the deterministic fill (seed of
                            tests/fixtures/resnet18), on the ImageNet transform of the
                            landscape image: the 10 most probable classes and probabilities.
"""

import argparse
import json
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch_reference as ref  # noqa: E402

LISTED_MODELS = ("resnet18", "resnet50", "resnext50_32x4d")
SAFETENSORS_DTYPES = {torch.float32: "F32", torch.int64: "I64"}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
REAL_SEED = 20


def write_listing(out_dir, model_name):
    """<model>.state_dict.json; returns the listing's entries."""
    model = ref.build_model(model_name)
    state = model.state_dict()
    names = set(state.keys())
    roles = ref.residual_bn_roles(model)
    entries = []
    for name, tensor in state.items():
        entries.append([name, SAFETENSORS_DTYPES[tensor.dtype], list(tensor.shape),
                        ref.deterministic_rule(name, tensor.shape, names, roles)])
    import torchvision
    header = {"model": model_name,
              "source": f"torchvision {torchvision.__version__}: "
                        f"torchvision.models.{model_name}().state_dict()",
              "count": len(entries)}
    # One entry per line: readable, and diffs show which key changed.
    lines = [json.dumps(e, separators=(",", ":")) for e in entries]
    text = json.dumps(header, indent=1)[:-2] + ',\n "entries": [\n  ' + ",\n  ".join(lines)
    text += "\n ]\n}\n"
    assert json.loads(text)["entries"] == entries
    (out_dir / f"{model_name}.state_dict.json").write_text(text)
    return entries


def state_from_listing(entries, seed):
    """The deterministic state_dict built from a listing alone, as the C++ test does."""
    state = OrderedDict()
    for name, dtype, shape, rule in entries:
        if rule == "num_batches_tracked":
            state[name] = torch.full(shape, ref.NUM_BATCHES_TRACKED, dtype=torch.int64)
            continue
        c0, c1, gap, scale = ref.DETERMINISTIC_RULES[rule]
        if scale is None:
            scale = (3.0 / (int(np.prod(shape)) // shape[0])) ** 0.5
        state[name] = torch.from_numpy(ref.deterministic_values(seed, name, shape, c0, c1, gap,
                                                                scale))
    return state


def check_listing_reproduces_zoo_fixture(fixture_dir, entries):
    """Loads the listing-built state_dict into torchvision's resnet18 (strict) and checks
    the output against tests/fixtures/resnet18/output_eval.npy, which the C++ test uses."""
    case = json.loads((fixture_dir / "case.json").read_text())
    seed, shape = case["seed"], case["input_shape"]
    model = ref.build_model(case["model"])
    model.load_state_dict(state_from_listing(entries, seed), strict=True)
    expected = ref.deterministic_state_dict(ref.build_model(case["model"]), seed)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, expected[name]), name
    model.eval()
    with torch.no_grad():
        y = model(ref.deterministic_tensor(seed, "input", shape))
    fixture = ref.load_npy(fixture_dir / "output_eval.npy")
    worst = (y - fixture).abs().max().item() / fixture.abs().max().item()
    assert worst <= ref.TOLERANCE / 10, worst
    print(f"listing of {case['model']} reproduces {fixture_dir}/output_eval.npy "
          f"(ratio {worst:.2e})")
    return model, seed


def write_real_state_dict(out_dir):
    """resnet20_* files: a PyTorch-written state_dict with its input and output."""
    torch.manual_seed(REAL_SEED)
    gen = torch.Generator().manual_seed(REAL_SEED)
    model = ref.build_model("resnet20")
    ref.randomize_model(model, gen)
    model.train()
    with torch.no_grad():
        for _ in range(3):  # real running statistics, num_batches_tracked moved to 6
            model(torch.randn(4, 3, 32, 32, generator=gen))
    model.eval()
    x = torch.randn(2, 3, 32, 32, generator=gen)
    with torch.no_grad():
        y = model(x)
    state = model.state_dict()
    alphabetical = OrderedDict(sorted(state.items()))
    path = out_dir / "resnet20_torch.safetensors"
    ref.save_safetensors(path, alphabetical, metadata={"format": "pt"})
    # The file loads back into a fresh model, strictly, with the same output.
    fresh = ref.build_model("resnet20")
    fresh.load_state_dict(ref.load_safetensors(path), strict=True)
    fresh.eval()
    with torch.no_grad():
        assert torch.equal(fresh(x), y)
    ref.save_npy(out_dir / "resnet20_input.npy", x)
    ref.save_npy(out_dir / "resnet20_output.npy", y)
    case = {"model": "resnet20", "seed": REAL_SEED, "input_shape": list(x.shape),
            "output_shape": list(y.shape),
            "num_batches_tracked": int(state["bn1.num_batches_tracked"]),
            "state_dict_order": list(state.keys()),
            "note": "header keys are alphabetical; state_dict_order is PyTorch's own",
            "tolerance": ref.TOLERANCE, "torch_version": torch.__version__}
    (out_dir / "resnet20_case.json").write_text(json.dumps(case, indent=1) + "\n")
    print(f"resnet20_torch.safetensors: {len(state)} tensors, "
          f"{path.stat().st_size} bytes")


def make_images(out_dir):
    """The generated PNGs: smooth ramps for compressibility, and stripes, checks and a
    sharp disc whose edges make the antialiasing filter matter."""
    from PIL import Image
    images = {}

    def pattern(width, height, phase):
        y, x = np.mgrid[0:height, 0:width].astype(np.float64)
        ramp = 255 * x / (width - 1)
        stripes = 127.5 + 127.5 * np.sin(x * 0.9 + y * 0.35 + phase)
        checks = np.where(((x // 7) + (y // 5)) % 2 == 0, 230.0, 25.0)
        disc = np.where((x - width / 3) ** 2 + (y - height / 2) ** 2 < (height / 4) ** 2,
                        255.0, 0.0)
        return [ramp, np.maximum(stripes, disc), np.where(y > height / 2, checks, ramp[::-1])]

    r, g, b = pattern(301, 233, 0.0)
    rgb = np.stack([r, g, b], axis=-1).round().astype(np.uint8)
    images["landscape_rgb.png"] = Image.fromarray(rgb, "RGB")

    r, g, b = pattern(457, 613, 1.0)
    alpha = np.linspace(0, 255, 457)[None, :].repeat(613, 0)
    rgba = np.stack([r, g, b, alpha], axis=-1).round().astype(np.uint8)
    images["portrait_rgba.png"] = Image.fromarray(rgba, "RGBA")

    gray = pattern(37, 29, 2.0)[1].round().astype(np.uint8)
    images["small_gray.png"] = Image.fromarray(gray, "L")

    for name, image in images.items():
        image.save(out_dir / name, optimize=True)
    return images


def write_preprocess_cases(out_dir):
    """preprocess/: torchvision's eval transforms on the generated images."""
    from PIL import Image
    from torchvision import transforms as T
    make_images(out_dir)
    cases = [
        # image, shorter side, crop [h, w], ImageNet normalization
        ("landscape_rgb.png", 256, [224, 224], True),
        ("portrait_rgba.png", 256, [224, 224], True),
        ("small_gray.png", 24, [20, 18], False),
        ("small_gray.png", 24, [28, 40], False),  # crop larger than the image: zero padding
    ]
    listing = []
    for i, (image_name, resize, crop, normalize) in enumerate(cases):
        # What torchvision's ImageFolder loader does: open, convert("RGB").
        with open(out_dir / image_name, "rb") as f:
            image = Image.open(f).convert("RGB")
        resized_crop = T.Compose([T.Resize(resize), T.CenterCrop(crop)])
        tensor = T.ToTensor()(resized_crop(image))
        as_bytes = (tensor * 255).round().to(torch.uint8)
        assert torch.equal(as_bytes.float().div(255), tensor), "ToTensor is byte / 255"
        if normalize:
            normalized = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)(tensor)
            rebuilt = as_bytes.float().div(255)
            mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
            std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
            assert torch.equal((rebuilt - mean) / std, normalized)
        name = f"case{i}_{Path(image_name).stem}.npy"
        np.save(out_dir / name, as_bytes.numpy())
        listing.append({"image": image_name, "resize": resize, "crop": crop,
                        "normalize": "imagenet" if normalize else "none",
                        "expected_uint8": name, "expected_shape": list(tensor.shape)})
    text = {"transform": "T.Compose([T.Resize(resize), T.CenterCrop(crop), T.ToTensor()] + "
                         "([T.Normalize(mean, std)] if normalize == 'imagenet' else [])) on "
                         "Image.open(image).convert('RGB')",
            "imagenet_mean": IMAGENET_MEAN, "imagenet_std": IMAGENET_STD,
            "expected_uint8": "the ToTensor output * 255 (exact); Normalize's output is "
                              "(x - mean) / std of it in float32 (checked)",
            "cases": listing}
    (out_dir / "cases.json").write_text(json.dumps(text, indent=1) + "\n")


def write_predict_reference(out_dir, model, seed, image_path):
    """predict_resnet18.json: torchvision's top 10 on the landscape image."""
    from PIL import Image
    from torchvision import transforms as T
    transform = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                           T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    with open(image_path, "rb") as f:
        x = transform(Image.open(f).convert("RGB")).unsqueeze(0)
    model.eval()
    with torch.no_grad():
        logits = model(x)
    p = torch.softmax(logits.double(), dim=1)[0]
    top = torch.argsort(p, descending=True)[:10]
    result = {"model": "resnet18", "weights": "deterministic fill, seed below",
              "seed": seed, "image": "preprocess/" + image_path.name,
              "transform": "Resize(256), CenterCrop(224), ToTensor(), Normalize(ImageNet)",
              "top": [{"index": int(i), "probability": float(p[i]),
                       "logit": float(logits[0, i])} for i in top]}
    (out_dir / "predict_resnet18.json").write_text(json.dumps(result, indent=1) + "\n")


def main():
    default_out = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "interop"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=default_out)
    args = parser.parse_args()
    ref.setup_torch()
    out_dir = args.out
    (out_dir / "preprocess").mkdir(parents=True, exist_ok=True)
    listings = {name: write_listing(out_dir, name) for name in LISTED_MODELS}
    model, seed = check_listing_reproduces_zoo_fixture(
        out_dir.parent / "resnet18", listings["resnet18"])
    write_real_state_dict(out_dir)
    write_preprocess_cases(out_dir / "preprocess")
    write_predict_reference(out_dir, model, seed, out_dir / "preprocess" / "landscape_rgb.png")
    total = sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file())
    print(f"{out_dir}: {total} bytes in all")


if __name__ == "__main__":
    main()
