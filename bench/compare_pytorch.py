#!/usr/bin/env python3
"""Benchmarks `resnet bench` against PyTorch on the same machine, in the same run.

Rounds alternate ours and PyTorch's (each a fresh process), so that a slow spell of a
noisy machine hits both; the report gives the median of each and the ratio
ours / PyTorch in images per second.

    bench/compare_pytorch.py --model block:64,128,2 --batch 32 --size 56 --mode infer

PyTorch comes from Debian (python3-torch); run this with /usr/bin/python3. When torch
cannot be imported, PyTorch's side is skipped and the script says so.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))


def torch_bench(args):
    """Times PyTorch in this process and prints one JSON line like `resnet bench --json`."""
    import time
    import torch
    import torch_reference as ref

    torch.set_num_threads(args.threads)
    if args.model.startswith("block:"):
        model = ref.build_model(args.model)
    else:
        model = ref.build_model(args.model, num_classes=args.num_classes or None,
                                in_channels=args.in_channels or 3)
    in_channels = model.conv1.in_channels
    x = torch.rand(args.batch, in_channels, args.size, args.size) * 2 - 1
    train = args.mode == "train"
    model.train(train)

    # A full training step, as `resnet bench --mode train` times it: forward,
    # cross-entropy, backward and an SGD update with momentum and weight decay.
    # A lone block has no classes: the gradient of its output's mean instead.
    fc = getattr(model, "fc", None)
    labels = torch.arange(args.batch) % fc.out_features if fc is not None else None
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def step():
        if train:
            opt.zero_grad()
            y = model(x)
            loss = torch.nn.functional.cross_entropy(y, labels) if fc is not None else y.mean()
            loss.backward()
            opt.step()
        else:
            with torch.no_grad():
                model(x)

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.iters):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1000)
    p50 = statistics.median(times)
    print(json.dumps({"peer": "pytorch", "torch": torch.__version__, "latency_ms_p50": p50,
                      "images_per_s": args.batch * 1000.0 / p50}))


def run_json(cmd):
    """Runs cmd, returns its last stdout line as JSON plus the process's peak RSS in MB.

    The peak comes from the kernel (wait4's ru_maxrss of that one child): all of the
    process's resident memory, imported libraries included, as /usr/bin/time reports.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{cmd[0]} exited with {proc.returncode}: {err.read().strip()}")
        result = json.loads(out.read().strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024.0
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="block:64,128,2")
    p.add_argument("--mode", default="infer", choices=["infer", "train"])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", type=int, default=56)
    p.add_argument("--in-channels", type=int, default=0)
    p.add_argument("--num-classes", type=int, default=0, help="0: the family's default")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--dtypes", default="f32",
                   help="ours, comma-separated (f32, bf16; bf16 training is mixed precision); "
                        "PyTorch runs f32")
    p.add_argument("--resnet", default=os.path.join(HERE, "..", "build", "resnet"))
    p.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.torch_worker:
        torch_bench(args)
        return

    common = ["--model", args.model, "--mode", args.mode, "--batch", str(args.batch), "--size", str(args.size),
              "--threads", str(args.threads), "--iters", str(args.iters), "--warmup", str(args.warmup)]
    if args.in_channels:
        common += ["--in-channels", str(args.in_channels)]
    if args.num_classes:
        common += ["--num-classes", str(args.num_classes)]
    dtypes = args.dtypes.split(",")
    ours_cmds = {d: [args.resnet, "bench", "--json", "--dtype", d] + common for d in dtypes}
    torch_cmd = [sys.executable, os.path.abspath(__file__), "--torch-worker"] + common
    try:
        subprocess.run([sys.executable, "-c", "import torch"], check=True, capture_output=True)
        have_torch = True
    except subprocess.CalledProcessError:
        have_torch = False
        print("PyTorch is not installed (python3-torch): its column is skipped", file=sys.stderr)

    ours = {d: [] for d in dtypes}
    ours_rss = {d: [] for d in dtypes}
    theirs, theirs_rss = [], []
    for r in range(args.rounds):
        line = f"round {r + 1}:"
        for d in dtypes:
            run = run_json(ours_cmds[d])
            ours[d].append(run["images_per_s"])
            ours_rss[d].append(run["peak_rss_mb"])
            line += f" resnet {d} {ours[d][-1]:.1f} images/s, {ours_rss[d][-1]:.0f} MB;"
        if have_torch:
            run = run_json(torch_cmd)
            theirs.append(run["images_per_s"])
            theirs_rss.append(run["peak_rss_mb"])
            line += f" pytorch {theirs[-1]:.1f} images/s, {theirs_rss[-1]:.0f} MB"
        print(line, file=sys.stderr)
    for d in dtypes:
        med_ours = statistics.median(ours[d])
        result = {"model": args.model, "mode": args.mode, "dtype": d, "batch": args.batch,
                  "size": args.size, "threads": args.threads, "rounds": args.rounds,
                  "resnet_images_per_s": med_ours,
                  "resnet_peak_rss_mb": statistics.median(ours_rss[d])}
        if have_torch:
            med_theirs = statistics.median(theirs)
            result.update({"pytorch_images_per_s": med_theirs, "ratio": med_ours / med_theirs,
                           "pytorch_peak_rss_mb": statistics.median(theirs_rss),
                           "rss_ratio": statistics.median(ours_rss[d]) / statistics.median(theirs_rss)})
        print(json.dumps(result))

if __name__ == "__main__":
    main()
