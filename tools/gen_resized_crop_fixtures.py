#!/usr/bin/env python3
"""Write tests/fixtures/interop/resized_crop/ (deterministic): torchvision 0.14's training
crop on the preprocessing fixture's PNGs (tests/fixtures/interop/preprocess/*.png).

Usage: /usr/bin/python3 tools/gen_resized_crop_fixtures.py [--out DIR]

  cases.json    per case: image, crop box [top, left, height, width], output size, flip,
                and the expected file; and per fallback case: image size, scale, ratio and
                the box RandomResizedCrop.get_params returns (every one of its 10 tries
                misses, so the answer does not depend on the random draws)
  case*.npy     F.resized_crop(image, box, size, BILINEAR) on the PIL image opened as
                ImageFolder opens it (convert("RGB")), then hflip when asked, after
                ToTensor, stored as uint8 (value * 255, checked exact)
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import functional as F

CASES = [
    # image, [top, left, height, width], size, flip
    ("landscape_rgb.png", [10, 20, 150, 200], 64, False),
    ("landscape_rgb.png", [0, 0, 233, 301], 224, True),
    ("portrait_rgba.png", [100, 50, 300, 180], 96, True),
    ("portrait_rgba.png", [613 - 37, 457 - 41, 37, 41], 53, False),  # upscaled corner
    ("small_gray.png", [3, 2, 10, 7], 31, False),
    ("small_gray.png", [28, 36, 1, 1], 5, True),
]

FALLBACKS = [
    # width, height, scale, ratio: no try can fit
    (301, 233, (1.0, 1.0), (2.0, 2.0)),    # too wide a ratio: full width, h = w / 2
    (100, 80, (1.0, 1.0), (0.25, 0.5)),    # too tall a ratio: full height, w = h / 2
    (64, 480, (0.9, 1.0), (3.0, 4.0)),     # a tall image and wide crops
    (10, 6, (1.0, 1.0), (0.75, 0.75)),     # rounding half to even: w = round(4.5) = 4
]


def main():
    root = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "interop"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=root / "resized_crop")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    listing = {"cases": [], "fallbacks": []}
    for i, (name, box, size, flip) in enumerate(CASES):
        with open(root / "preprocess" / name, "rb") as f:
            image = Image.open(f).convert("RGB")
        out = F.resized_crop(image, *box, [size, size], T.InterpolationMode.BILINEAR)
        if flip:
            out = F.hflip(out)
        tensor = T.ToTensor()(out)
        as_bytes = (tensor * 255).round().to(torch.uint8)
        assert torch.equal(as_bytes.float().div(255), tensor), "ToTensor is byte / 255"
        expected = f"case{i}_{Path(name).stem}.npy"
        np.save(args.out / expected, as_bytes.numpy())
        listing["cases"].append({"image": name, "box": box, "size": size, "flip": flip,
                                 "expected_uint8": expected})
    for width, height, scale, ratio in FALLBACKS:
        image = Image.new("RGB", (width, height))
        boxes = {T.RandomResizedCrop.get_params(image, list(scale), list(ratio))
                 for _ in range(20)}
        assert len(boxes) == 1, "a fallback case must not depend on the draws"
        listing["fallbacks"].append({"width": width, "height": height, "scale": scale,
                                     "ratio": ratio, "box": list(boxes.pop())})
    (args.out / "cases.json").write_text(json.dumps(listing, indent=1) + "\n")


if __name__ == "__main__":
    main()
