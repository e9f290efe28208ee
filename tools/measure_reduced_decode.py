#!/usr/bin/env python3
"""Measures what a reduced JPEG decode changes, on every JPEG under a folder.

For each JPEG and each denominator d in 2, 4, 8: decode at 1/d with libjpeg's scaled IDCT
(Pillow's draft(), which gives the same bytes as `resnet`'s DecodeOptions{d}: see
tests/fixtures/images) against decoding at full size and resizing to the same size with
Pillow's antialiased BILINEAR filter (torchvision's Resize; `resnet`'s
resize_bilinear_antialias gives the same bytes). Prints, per d, the largest and the mean
absolute difference, its 99th percentile and the mean absolute difference in 8-bit levels over all pixels and channels of all images.

Usage: python3 tools/measure_reduced_decode.py DIR
"""

import glob
import os
import sys

import numpy as np
from PIL import Image, ImageOps


def decode(path, d):
    im = Image.open(path)
    if d > 1:
        w, h = im.size
        im.draft(im.mode, (max(1, w // d), max(1, h // d)))
        assert im.size == (-(-w // d), -(-h // d)), (path, im.size, d)
    return ImageOps.exif_transpose(im).convert("RGB")


def main():
    root = sys.argv[1]
    files = sorted(f for f in glob.glob(os.path.join(root, "**", "*"), recursive=True)
                   if f.lower().endswith((".jpg", ".jpeg")))
    print(f"{len(files)} JPEGs under {root}")
    for d in (2, 4, 8):
        worst, total, count, diffs = 0, 0.0, 0, []
        for f in files:
            reduced = np.asarray(decode(f, d), dtype=np.int32)
            full = decode(f, 1).resize((reduced.shape[1], reduced.shape[0]),
                                       Image.Resampling.BILINEAR)
            diff = np.abs(reduced - np.asarray(full, dtype=np.int32))
            worst = max(worst, int(diff.max()))
            total += float(diff.sum())
            count += diff.size
            diffs.append(diff.ravel())
        p99 = np.percentile(np.concatenate(diffs), 99)
        print(f"1/{d}: max abs difference {worst}, 99th percentile {p99:.0f}, "
              f"mean {total / count:.2f} (8-bit levels)")


if __name__ == "__main__":
    main()
