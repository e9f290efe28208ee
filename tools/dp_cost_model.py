#!/usr/bin/env python3
"""Cost model of data-parallel training (README, "Data-parallel training over MPI").

Per step, every node sums its gradients (4 bytes per parameter) over N nodes with a ring
allreduce: each node sends and receives 2 (N - 1) / N of the bytes, in 2 (N - 1) messages,
    T = 2 (N - 1) / N * bytes / bandwidth + 2 (N - 1) * latency.
The reduction overlaps the backward pass: buckets start as their layers finish, so all but
the last bucket's reduction can hide behind the rest of backward,
    exposed = max(T - hideable * backward, T * last_bucket_fraction),
and the step takes forward + backward + exposed; efficiency = (forward + backward) / step.

  tools/dp_cost_model.py --params 25557032 --forward-ms 2800 --backward-ms 5600
"""
import argparse


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", default="model")
    p.add_argument("--params", type=int, required=True, help="trainable parameters")
    p.add_argument("--forward-ms", type=float, required=True, help="measured forward per step")
    p.add_argument("--backward-ms", type=float, required=True, help="measured backward per step")
    p.add_argument("--bucket-mb", type=float, default=1.0)
    p.add_argument("--hideable", type=float, default=0.9,
                   help="fraction of backward after the first bucket is ready")
    p.add_argument("--latency-us", type=float, default=20.0, help="per message (assumed)")
    p.add_argument("--gbits", default="10,25,100")
    p.add_argument("--nodes", default="2,4,8,16,32,64")
    a = p.parse_args()
    size = 4.0 * a.params
    last_fraction = min(1.0, a.bucket_mb * 2**20 / size)
    compute = (a.forward_ms + a.backward_ms) / 1e3
    print(f"{a.name}: {a.params} parameters, {size / 1e6:.2f} MB of gradients per step, "
          f"compute {compute * 1e3:.0f} ms (backward {a.backward_ms:.0f} ms)")
    gbits = [float(g) for g in a.gbits.split(",")]
    print("| nodes | " + " | ".join(f"{g:g} Gb/s: allreduce, exposed, efficiency" for g in gbits) + " |")
    print("| --- |" + " --- |" * len(gbits))
    for n in [int(x) for x in a.nodes.split(",")]:
        cells = []
        for g in gbits:
            bandwidth = g * 1e9 / 8
            t = 2 * (n - 1) / n * size / bandwidth + 2 * (n - 1) * a.latency_us * 1e-6
            exposed = max(t - a.hideable * a.backward_ms / 1e3, t * last_fraction)
            cells.append(f"{t * 1e3:.0f} ms, {exposed * 1e3:.0f} ms, {100 * compute / (compute + exposed):.0f}%")
        print(f"| {n} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
