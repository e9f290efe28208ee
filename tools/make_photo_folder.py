#!/usr/bin/env python3
"""Renders Fashion-MNIST items as varied photos in an image folder (DIR/train/CLASS/...,
DIR/val/CLASS/...), the layout `--data folder:DIR` reads.

Each picture is one item, coloured and shaded, pasted at a random position and scale on a
textured background (smooth colour blobs, a light gradient and grain), at a random size of
60 to 400 pixels a side with an aspect ratio between 1:2 and 2:1. The files mix what real
photo folders hold: baseline and progressive JPEGs, JPEGs stored rotated or mirrored with an
EXIF orientation that ImageOps.exif_transpose undoes (so the upright picture is what a
viewer, Pillow's exif_transpose and our decoder show), RGB, RGBA and palette PNGs, and
grayscale JPEGs and PNGs. Training items come from Fashion-MNIST's training set, validation
items from its test set. The output is a function of the options alone (same seed, same
bytes).

Needs only numpy and Pillow. Example:
  python3 tools/make_photo_folder.py --out photos --classes 0,1,7 \
      --per-class-train 40 --per-class-val 10 --seed 1
"""

import argparse
import gzip
import os
import re
import struct

import numpy as np
from PIL import Image, ImageOps

CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]

# (kind, weight): what the files are, in proportion.
KINDS = [("jpeg", 30), ("jpeg_progressive", 15), ("jpeg_exif", 20), ("png_rgb", 10),
         ("png_rgba", 8), ("png_palette", 7), ("jpeg_gray", 5), ("png_gray", 5)]

# EXIF orientation -> the transpose that stores an upright picture so that
# exif_transpose (which applies the inverse of this) shows it upright again.
STORE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
         4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
         6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
         8: Image.Transpose.ROTATE_270}


def safe_name(name):
    """A class name as a folder name: lower case, runs of other characters as '_'."""
    return re.sub(r"[^a-z0-9-]+", "_", name.lower()).strip("_")


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    dims = magic & 0xff
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load_split(root, prefix):
    images = read_idx(os.path.join(root, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(root, f"{prefix}-labels-idx1-ubyte.gz"))
    return images, labels


def random_size(rng):
    """(height, width): sides in [60, 400], aspect ratio in [1/2, 2]."""
    while True:
        w = int(rng.integers(60, 401))
        h = int(round(w * np.exp(rng.uniform(np.log(0.5), np.log(2.0)))))
        if 60 <= h <= 400:
            return h, w


def background(rng, h, w, base):
    """Smooth colour blobs around `base`, a light gradient and grain, as float RGB in
    [0, 255]."""
    grid = np.clip(base + rng.uniform(-45, 45, size=(int(rng.integers(2, 6)),
                                                     int(rng.integers(2, 6)), 3)), 0, 255)
    blobs = np.asarray(Image.fromarray(grid.astype(np.uint8), "RGB").resize(
        (w, h), Image.Resampling.BICUBIC), dtype=np.float64)
    y, x = np.mgrid[0:h, 0:w]
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * x / w + np.sin(angle) * y / h)[..., None] * rng.uniform(-40, 40)
    grain = rng.normal(0, rng.uniform(2, 10), size=(h, w, 1))
    return blobs + ramp + grain


def render(item, rng, textured=True):
    """An upright RGB photo of a 28x28 Fashion-MNIST item, on a textured background or,
    with textured=False, on a flat one of a random colour."""
    h, w = random_size(rng)
    base = rng.uniform(60, 200, size=3)
    canvas = background(rng, h, w, base) if textured else np.broadcast_to(base, (h, w, 3)).copy()
    side = max(16, int(min(h, w) * rng.uniform(0.45, 0.95)))
    mask = np.asarray(Image.fromarray(item, "L").resize((side, side), Image.Resampling.BICUBIC),
                      dtype=np.float64)[..., None] / 255.0
    # An item as dark or as light as its background is invisible, which makes a photo a
    # mislabelled one: the item's colour differs from the background's tone by at least 60
    # levels on average over the channels.
    colour = rng.uniform(20, 235, size=3)
    while np.abs(colour - base).mean() < 60:
        colour = rng.uniform(20, 235, size=3)
    shade = 0.55 + 0.45 * mask  # darker where the item is faint: a little relief
    top = int(rng.integers(0, h - side + 1))
    left = int(rng.integers(0, w - side + 1))
    region = canvas[top:top + side, left:left + side]
    canvas[top:top + side, left:left + side] = region * (1 - mask) + colour * shade * mask
    return Image.fromarray(np.clip(np.rint(canvas), 0, 255).astype(np.uint8), "RGB")


def exif_orientation_block(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def save(photo, kind, rng, stem):
    """Writes `photo` as `kind`; returns the file name."""
    quality = int(rng.integers(70, 96))
    if kind == "jpeg":
        photo.save(stem + ".jpg", quality=quality)
        return stem + ".jpg"
    if kind == "jpeg_progressive":
        photo.save(stem + ".jpg", quality=quality, progressive=True)
        return stem + ".jpg"
    if kind == "jpeg_exif":
        orientation = int(rng.integers(2, 9))
        stored = photo.transpose(STORE[orientation])
        stored.save(stem + ".jpg", quality=quality, exif=exif_orientation_block(orientation),
                    progressive=bool(rng.integers(0, 2)))
        # exif_transpose must give the upright picture back (up to the JPEG loss).
        back = ImageOps.exif_transpose(Image.open(stem + ".jpg")).convert("RGB")
        assert back.size == photo.size, (stem, orientation)
        error = np.abs(np.asarray(back, dtype=np.int32) - np.asarray(photo, dtype=np.int32))
        assert error.mean() < 10, (stem, orientation, error.mean())
        return stem + ".jpg"
    if kind == "jpeg_gray":
        photo.convert("L").save(stem + ".jpg", quality=quality)
        return stem + ".jpg"
    if kind == "png_rgb":
        photo.save(stem + ".png")
        return stem + ".png"
    if kind == "png_rgba":
        alpha = Image.fromarray(rng.integers(128, 256, size=(photo.height, photo.width),
                                             dtype=np.uint8), "L")
        rgba = photo.copy()
        rgba.putalpha(alpha)
        rgba.save(stem + ".png")
        return stem + ".png"
    if kind == "png_palette":
        photo.quantize(colors=int(rng.integers(16, 257))).save(stem + ".png")
        return stem + ".png"
    if kind == "png_gray":
        photo.convert("L").save(stem + ".png")
        return stem + ".png"
    raise ValueError(kind)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder to create (DIR/train, DIR/val)")
    parser.add_argument("--classes", default="0,1,2,3,4,5,6,7,8,9",
                        help="Fashion-MNIST class indices, comma-separated")
    parser.add_argument("--per-class-train", type=int, default=20)
    parser.add_argument("--per-class-val", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--background", choices=["textured", "flat"], default="textured",
                        help="textured (blobs, gradient, grain) or flat: one random colour, an "
                             "easier task that a network learns in a few hundred steps")
    parser.add_argument("--fashion-mnist", default="/usr/share/datasets/fashion-mnist",
                        help="folder with the four IDX .gz files")
    args = parser.parse_args()
    classes = [int(c) for c in args.classes.split(",")]
    if any(c < 0 or c > 9 for c in classes) or len(set(classes)) != len(classes):
        parser.error(f"--classes: expected distinct indices in 0..9, got {args.classes}")
    rng = np.random.default_rng(args.seed)
    kinds = [k for k, _ in KINDS]
    weights = np.array([wt for _, wt in KINDS], dtype=np.float64)
    weights /= weights.sum()
    counts = {}
    for split, prefix, per_class in (("train", "train", args.per_class_train),
                                     ("val", "t10k", args.per_class_val)):
        images, labels = load_split(args.fashion_mnist, prefix)
        for c in classes:
            folder = os.path.join(args.out, split, safe_name(CLASS_NAMES[c]))
            os.makedirs(folder, exist_ok=True)
            pool = np.flatnonzero(labels == c)
            if per_class > len(pool):
                parser.error(f"{split}: class {c} has only {len(pool)} items")
            picks = rng.choice(pool, size=per_class, replace=False)
            for n, index in enumerate(picks):
                kind = kinds[int(rng.choice(len(kinds), p=weights))]
                photo = render(images[index], rng, args.background == "textured")
                save(photo, kind, rng, os.path.join(folder, f"{n:05d}"))
                counts[kind] = counts.get(kind, 0) + 1
    total = sum(counts.values())
    print(f"wrote {total} photos to {args.out}: " +
          ", ".join(f"{k} {counts.get(k, 0)}" for k in kinds))


if __name__ == "__main__":
    main()
