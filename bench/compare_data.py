#!/usr/bin/env python3
"""Benchmarks `resnet bench --mode data` against torchvision's data pipeline on the same files.

Both sides run the training transform of fine-tuning at the same worker count:
RandomResizedCrop(SIZE) (bilinear), RandomHorizontalFlip, ToTensor, Normalize(ImageNet),
batches assembled -- ours with its loader's worker threads, torchvision's as
ImageFolder(DIR/train) with DataLoader(num_workers=N, shuffle=True). Rounds alternate the
two (each a fresh process), so that a slow spell of a noisy machine hits both; the report
gives the median images/s of each and the ratio ours / torchvision, and the CPU time per
image of each side (all threads and worker processes; less disturbed by other processes on
a busy machine than the wall time) and its ratio torchvision / ours.

    bench/compare_data.py --data DIR --size 224 --workers 2 --batch 32 --iters 20

torchvision comes from Debian (python3-torchvision); run this with /usr/bin/python3. When it
cannot be imported, its side is skipped and the script says so.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def torch_bench(args):
    """Times torchvision's loader in this process; prints one JSON line like ours."""
    import time
    import torch
    from torchvision import datasets, transforms as T

    torch.set_num_threads(1)  # as ours: one thread per worker, no intra-op threads
    transform = T.Compose([
        T.RandomResizedCrop(args.size),  # bilinear, scale (0.08, 1), ratio (3/4, 4/3)
        T.RandomHorizontalFlip(),
        T.ToTensor(),
        T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    ])
    dataset = datasets.ImageFolder(os.path.join(args.data, "train"), transform)
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch, shuffle=True,
                                         num_workers=args.workers,
                                         persistent_workers=args.workers > 0,
                                         prefetch_factor=2 if args.workers > 0 else 2)
    generator = iter(loader)

    def next_batch():
        nonlocal generator
        try:
            images, _ = next(generator)
        except StopIteration:
            generator = iter(loader)
            images, _ = next(generator)
        return images.shape[0]

    def cpu_seconds():
        # This process and its loader's worker processes, from /proc (utime + stime).
        pids = [os.getpid()] + [w.pid for w in getattr(generator, "_workers", [])]
        ticks = 0
        for pid in pids:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    for _ in range(args.warmup):
        next_batch()
    t0 = time.perf_counter()
    cpu0 = cpu_seconds()
    images = sum(next_batch() for _ in range(args.iters))
    seconds = time.perf_counter() - t0
    cpu_ms_per_image = 1000 * (cpu_seconds() - cpu0) / images
    print(json.dumps({"peer": "torchvision", "torch": torch.__version__, "images": images,
                      "seconds": seconds, "images_per_s": images / seconds,
                      "cpu_ms_per_image": cpu_ms_per_image}))


def run_json(cmd):
    """Runs cmd, returns its last stdout line as JSON."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.run(cmd, stdout=out, stderr=err)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{cmd[0]} exited with {proc.returncode}: {err.read().strip()}")
        return json.loads(out.read().strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="an image folder: DIR/train/CLASS/*.jpg")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--iters", type=int, default=20, help="timed batches")
    p.add_argument("--warmup", type=int, default=3, help="untimed batches first")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--reduced-decode", default="true", choices=["true", "false"])
    p.add_argument("--resnet", default=os.path.join(HERE, "..", "build", "resnet"))
    p.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.torch_worker:
        torch_bench(args)
        return

    common = ["--size", str(args.size), "--workers", str(args.workers), "--batch",
              str(args.batch), "--iters", str(args.iters), "--warmup", str(args.warmup)]
    ours_cmd = [args.resnet, "bench", "--mode", "data", "--json", "--data", "folder:" + args.data,
                "--reduced-decode", args.reduced_decode] + common
    torch_cmd = [sys.executable, os.path.abspath(__file__), "--torch-worker", "--data",
                 args.data] + common
    try:
        subprocess.run([sys.executable, "-c", "import torchvision"], check=True,
                       capture_output=True)
        have_torch = True
    except subprocess.CalledProcessError:
        have_torch = False
        print("torchvision is not installed (python3-torchvision): its column is skipped",
              file=sys.stderr)

    ours, theirs, ours_cpu, theirs_cpu = [], [], [], []
    for r in range(args.rounds):
        run = run_json(ours_cmd)
        ours.append(run["images_per_s"])
        ours_cpu.append(run["cpu_ms_per_image"])
        line = f"round {r + 1}: resnet {ours[-1]:.1f} images/s, {ours_cpu[-1]:.2f} CPU ms/image"
        if have_torch:
            run = run_json(torch_cmd)
            theirs.append(run["images_per_s"])
            theirs_cpu.append(run["cpu_ms_per_image"])
            line += f"; torchvision {theirs[-1]:.1f} images/s, {theirs_cpu[-1]:.2f} CPU ms/image"
        print(line, file=sys.stderr)
    result = {"data": args.data, "size": args.size, "workers": args.workers,
              "batch": args.batch, "iters": args.iters, "rounds": args.rounds,
              "reduced_decode": args.reduced_decode == "true",
              "resnet_images_per_s": statistics.median(ours),
              "resnet_cpu_ms_per_image": statistics.median(ours_cpu)}
    if have_torch:
        result.update({"torchvision_images_per_s": statistics.median(theirs),
                       "torchvision_cpu_ms_per_image": statistics.median(theirs_cpu),
                       "ratio": statistics.median(ours) / statistics.median(theirs),
                       "cpu_ratio": statistics.median(theirs_cpu) / statistics.median(ours_cpu)})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
