#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora: small test fixtures of each format, and small
files generated here for the formats the fixtures lack (IDX, CIFAR, label files, a training
run's config.json and state). Usage: make_seeds.py OUT_DIR (one folder per target)."""
import gzip
import json
import os
import re
import shutil
import struct
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FIXTURES = os.path.join(ROOT, "tests", "fixtures")


def fixtures(suffixes, max_bytes, limit=40):
    found = []
    for folder, _, names in sorted(os.walk(FIXTURES)):
        for name in sorted(names):
            path = os.path.join(folder, name)
            if name.endswith(suffixes) and os.path.getsize(path) <= max_bytes:
                found.append(path)
    return found[:limit]


def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape, bytes)] in data order."""
    header, offset = {}, 0
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(t[3] for t in tensors)


def f32(values):
    return struct.pack("<%df" % len(values), *values)


def small_network_state(metadata=None):
    """Linear(4, 3) then BatchNorm2d(3), as fuzz_safetensors.cpp builds it."""
    return safetensors([
        ("0.weight", "F32", [3, 4], f32([0.1 * i for i in range(12)])),
        ("0.bias", "F32", [3], f32([0.0, 1.0, -1.0])),
        ("1.weight", "F32", [3], f32([1.0, 1.0, 1.0])),
        ("1.bias", "F32", [3], f32([0.0, 0.0, 0.0])),
        ("1.running_mean", "F32", [3], f32([0.0, 0.5, 0.0])),
        ("1.running_var", "F32", [3], f32([1.0, 1.0, 2.0])),
        ("1.num_batches_tracked", "I64", [], struct.pack("<q", 7)),
    ], metadata)


CHECKPOINT_METADATA = {
    "format": "resnet-checkpoint-1", "model": "resnet20", "num_classes": "3",
    "in_channels": "1", "shortcut": "A", "input_size": "28x28", "eval_resize": "32",
    "normalize_mean": "0.286", "normalize_std": "0.353",
    "class_names": json.dumps(["a", "b", "c"]), "dataset": "fashion-mnist", "epoch": "2",
}

CONFIG = {
    "recipe": "", "model": "resnet20", "num_classes": 10, "in_channels": 1, "shortcut": "A",
    "zero_init_residual": False, "data": "fake:1x8x8:3:24", "epochs": 2, "batch": 8,
    "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.0005,
    "decay_bn_and_bias": False, "schedule": "onecycle", "warmup_steps": 0,
    "label_smoothing": 0.0, "crop_padding": 2, "flip": True, "erasing": 0.0, "size": 0,
    "resize": 0, "reduced_decode": True, "crop_scale": 0.08, "precision": "f32",
    "val_split": 0.0, "workers": 2, "skip_bad_images": False, "seed": 1, "out": "runs/x",
    "threads": 0, "eval_batch": 500, "grad_norm_steps": 0, "init": "", "freeze": "",
    "lr_backbone": 1.0, "ema": 0.0, "mixup": 0.0, "cutmix": 0.0, "test_flip": False,
}

STATE = {"epoch": "1", "next_batch": "2", "global_step": "5", "best_acc": "0.25",
         "loss_sum": "12.5", "seconds": "3.5", "correct": "4", "seen": "16",
         "best_ema_acc": "-1", "save_id": "5"}


def idx_images(count, rows, cols):
    pixels = bytes((i * 37) % 256 for i in range(count * rows * cols))
    return struct.pack(">BBBBIII", 0, 0, 8, 3, count, rows, cols) + pixels


def idx_labels(count):
    return struct.pack(">BBBBI", 0, 0, 8, 1, count) + bytes(i % 10 for i in range(count))


def cifar(records, labels_per_record):
    out = b""
    for r in range(records):
        out += bytes([r % 10] * labels_per_record) + bytes((r + i) % 256 for i in range(3072))
    return out


def conformance_models():
    """The models of ONNX's node tests that the conformance test runs (its committed list),
    where libonnx-testdata is installed: every operator the importer reads, at every
    attribute form the spec allows."""
    listing = os.path.join(ROOT, "tests", "io", "onnx_conformance_outcomes.inc")
    node_tests = "/usr/share/libonnx-testdata/data/node"
    models = []
    for name in re.findall(r'\{"(test_[a-z0-9_]+)"', open(listing).read()):
        path = os.path.join(node_tests, name, "model.onnx")
        if os.path.exists(path):
            models.append(open(path, "rb").read())
    return models


def main():
    out = sys.argv[1]
    seeds = {name: [] for name in ["npy", "safetensors", "idx", "idx_gzip", "cifar", "image",
                                   "onnx", "resume", "label_file"]}
    seeds["npy"] = [open(p, "rb").read() for p in fixtures((".npy",), 16384)]
    seeds["safetensors"] = [open(p, "rb").read() for p in fixtures((".safetensors",), 16384)]
    seeds["safetensors"] += [small_network_state(), small_network_state(CHECKPOINT_METADATA)]
    raw = [idx_images(3, 4, 5), idx_images(1, 1, 1), idx_labels(7), idx_labels(1)]
    seeds["idx"] = raw + [gzip.compress(r, mtime=0) for r in raw]
    seeds["idx_gzip"] = raw
    seeds["cifar"] = [cifar(2, 1), cifar(2, 2), cifar(1, 1)]
    seeds["image"] = [open(p, "rb").read() for p in fixtures((".png", ".jpg"), 65536, 60)]
    seeds["onnx"] = [open(p, "rb").read() for p in fixtures((".onnx",), 65536)]
    seeds["onnx"] += conformance_models()
    state = safetensors([("momentum.0.weight", "F32", [3, 4], f32([0.0] * 12))], STATE)
    config = json.dumps(CONFIG, indent=2).encode() + b"\n"
    seeds["resume"] = [config + b"\n@@state@@\n" + state, config]
    seeds["label_file"] = [b"".join(b"class %d\n" % i for i in range(10)),
                           b"".join(b"n%08d tench\r\n" % i for i in range(10)), b"one\ntwo"]
    for name, files in seeds.items():
        folder = os.path.join(out, name)
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        for i, data in enumerate(files):
            with open(os.path.join(folder, "seed%03d" % i), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
