#!/usr/bin/env python3
"""Write the PyTorch reference fixtures of the training math under tests/fixtures/train/.

Usage: /usr/bin/python3 tools/gen_train_fixtures.py [--out tests/fixtures/train]

Deterministic (fixed seeds). Files:
  cross_entropy.safetensors  logits [N, K] (F32), labels [N] (I64), grad.<i> [N, K]: the
                             gradient of F.cross_entropy(logits, labels,
                             label_smoothing=CE_SMOOTHING[i]) w.r.t. the logits, computed
                             in float64 from the same float32 logits.
  cross_entropy.json         {"label_smoothing": [...], "loss": [...]} (float64 losses).
  sgd.safetensors            init.<p> (the parameters before the first step), grad.<k>.<p>
                             (the gradient fed to step k), <case>.step<k>.<p> (each
                             parameter after step k) and <case>.momentum_buffer.<p> (the
                             buffers after the last step) for every case of sgd.json.
  sgd.json                   {"params": [...], "steps": S, "cases": [{"name", "lr" (one
                             per step: set before that step), "momentum", "dampening",
                             "weight_decay", "nesterov", "decay_bn_and_bias"}]}.
                             decay_bn_and_bias false: rank-1 parameters and biases go in a
                             second param group with weight_decay 0.
  lr_schedules.json          {"cases": [{"name", "spec", "base_lr", "total_steps",
                             "warmup_steps", "warmup_start_factor", "torch", "lrs"}]}: the
                             optimizer's lr before each of len(lrs) steps under the torch
                             scheduler described by "torch", which the spec string (grammar
                             in include/resnet/train/lr_schedule_spec.h) must reproduce.
"""

import argparse
import json
import sys
import warnings
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.optim import lr_scheduler as sched

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch_reference as ref  # noqa: E402

CE_SMOOTHING = (0.0, 0.1, 0.35)

SGD_PARAMS = OrderedDict([  # name -> shape: a weight, a BN weight, a bias
    ("layer.weight", (4, 3)),
    ("bn.weight", (3,)),
    ("fc.bias", (4,)),
])
SGD_STEPS = 6
SGD_CASES = (
    dict(name="plain", lr=0.1),
    dict(name="momentum", lr=0.1, momentum=0.9),
    dict(name="dampening_decay", lr=0.05, momentum=0.8, dampening=0.25, weight_decay=0.05),
    dict(name="nesterov_decay", lr=[0.1, 0.05, 0.2, 0.01, 0.1, 0.3], momentum=0.9,
         weight_decay=0.05, nesterov=True),
    dict(name="no_decay_bn_bias", lr=0.1, momentum=0.9, weight_decay=0.05,
         decay_bn_and_bias=False),
)

LR_STEPS = 50


def write_cross_entropy(out):
    gen = torch.Generator().manual_seed(7)
    n, k = 6, 5
    logits = (torch.randn(n, k, generator=gen) * 3.0).float()
    logits[2] += 40.0  # a shifted row: only log-sum-exp keeps it finite
    labels = torch.randint(0, k, (n,), generator=gen, dtype=torch.int64)
    labels[0], labels[1] = 0, k - 1  # both ends of the range
    tensors = OrderedDict([("logits", logits), ("labels", labels)])
    losses = []
    for i, eps in enumerate(CE_SMOOTHING):
        x = logits.double().clone().requires_grad_(True)
        loss = F.cross_entropy(x, labels, label_smoothing=eps)
        loss.backward()
        losses.append(loss.item())
        tensors[f"grad.{i}"] = x.grad.float()
    ref.save_safetensors(out / "cross_entropy.safetensors", tensors)
    with open(out / "cross_entropy.json", "w") as f:
        json.dump({"label_smoothing": list(CE_SMOOTHING), "loss": losses}, f, indent=1)
        f.write("\n")


def sgd_case_options(case):
    lr = case["lr"]
    return dict(name=case["name"], lr=lr if isinstance(lr, list) else [lr] * SGD_STEPS,
                momentum=case.get("momentum", 0.0), dampening=case.get("dampening", 0.0),
                weight_decay=case.get("weight_decay", 0.0),
                nesterov=case.get("nesterov", False),
                decay_bn_and_bias=case.get("decay_bn_and_bias", True))


def write_sgd(out):
    gen = torch.Generator().manual_seed(11)
    init = OrderedDict((n, torch.randn(s, generator=gen)) for n, s in SGD_PARAMS.items())
    grads = [OrderedDict((n, torch.randn(s, generator=gen)) for n, s in SGD_PARAMS.items())
             for _ in range(SGD_STEPS)]
    tensors = OrderedDict((f"init.{n}", t) for n, t in init.items())
    for k, g in enumerate(grads):
        tensors.update((f"grad.{k}.{n}", t) for n, t in g.items())
    cases = []
    for case in SGD_CASES:
        o = sgd_case_options(case)
        cases.append(o)
        params = OrderedDict((n, t.clone().requires_grad_(True)) for n, t in init.items())
        hyper = dict(lr=o["lr"][0], momentum=o["momentum"], dampening=o["dampening"],
                     weight_decay=o["weight_decay"], nesterov=o["nesterov"])
        if o["decay_bn_and_bias"]:
            groups = [{"params": list(params.values())}]
        else:
            exempt = [n for n, p in params.items() if p.dim() <= 1 or n.endswith(".bias")]
            groups = [{"params": [p for n, p in params.items() if n not in exempt]},
                      {"params": [params[n] for n in exempt], "weight_decay": 0.0}]
        opt = torch.optim.SGD(groups, **hyper)
        for k in range(SGD_STEPS):
            for group in opt.param_groups:
                group["lr"] = o["lr"][k]
            for n, p in params.items():
                p.grad = grads[k][n].clone()
            opt.step()
            tensors.update((f"{o['name']}.step{k}.{n}", p.detach().clone())
                           for n, p in params.items())
        if o["momentum"] != 0:
            tensors.update((f"{o['name']}.momentum_buffer.{n}",
                            opt.state[p]["momentum_buffer"].clone())
                           for n, p in params.items())
    ref.save_safetensors(out / "sgd.safetensors", tensors)
    with open(out / "sgd.json", "w") as f:
        json.dump({"params": list(SGD_PARAMS), "steps": SGD_STEPS, "cases": cases}, f,
                  indent=1)
        f.write("\n")


def lr_sequence(base_lr, make, steps):
    """The lr before each of `steps` optimizer steps under the scheduler make(opt)."""
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=base_lr, momentum=0.9)
    scheduler = make(opt)
    lrs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SequentialLR's step(0) deprecation warning
        for _ in range(steps):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            scheduler.step()
    return lrs


def warmed(warmup, start_factor, make_main):
    """LinearLR warm-up over `warmup` steps handing over to make_main(opt) (SequentialLR)."""
    def make(opt):
        first = sched.LinearLR(opt, start_factor=start_factor, total_iters=warmup)
        return sched.SequentialLR(opt, [first, make_main(opt)], milestones=[warmup])
    return make


def lr_cases():
    """(name, spec, base_lr, total_steps, warmup_steps, warmup_start_factor, torch text, make)."""
    third = 1.0 / 3.0
    return (
        ("multistep", "multistep:10,25,40:0.5", 0.1, LR_STEPS, 0, third,
         "MultiStepLR(milestones=[10,25,40], gamma=0.5)",
         lambda o: sched.MultiStepLR(o, milestones=[10, 25, 40], gamma=0.5)),
        ("multistep_default_gamma", "multistep:5,20", 0.4, LR_STEPS, 0, third,
         "MultiStepLR(milestones=[5,20], gamma=0.1)",
         lambda o: sched.MultiStepLR(o, milestones=[5, 20])),
        ("cosine", "cosine", 0.1, LR_STEPS, 0, third, "CosineAnnealingLR(T_max=50)",
         lambda o: sched.CosineAnnealingLR(o, T_max=50)),
        ("cosine_eta_min_past_end", "cosine:0.001", 0.2, 30, 0, third,
         "CosineAnnealingLR(T_max=30, eta_min=0.001), 50 steps",
         lambda o: sched.CosineAnnealingLR(o, T_max=30, eta_min=0.001)),
        ("onecycle", "onecycle", 0.1, LR_STEPS, 0, third,
         "OneCycleLR(max_lr=0.1, total_steps=50, cycle_momentum=False)",
         lambda o: sched.OneCycleLR(o, max_lr=0.1, total_steps=50, cycle_momentum=False)),
        ("onecycle_options", "onecycle:0.25:10:100", 0.5, LR_STEPS, 0, third,
         "OneCycleLR(max_lr=0.5, total_steps=50, pct_start=0.25, div_factor=10, "
         "final_div_factor=100, cycle_momentum=False)",
         lambda o: sched.OneCycleLR(o, max_lr=0.5, total_steps=50, pct_start=0.25,
                                    div_factor=10, final_div_factor=100,
                                    cycle_momentum=False)),
        ("warmup_cosine", "cosine", 0.1, LR_STEPS, 5, 0.25,
         "SequentialLR([LinearLR(start_factor=0.25, total_iters=5), "
         "CosineAnnealingLR(T_max=45)], milestones=[5])",
         warmed(5, 0.25, lambda o: sched.CosineAnnealingLR(o, T_max=45))),
        ("warmup_multistep", "multistep:10,20", 0.1, LR_STEPS, 4, third,
         "SequentialLR([LinearLR(total_iters=4), MultiStepLR(milestones=[10,20])], "
         "milestones=[4])",
         warmed(4, third, lambda o: sched.MultiStepLR(o, milestones=[10, 20]))),
        ("warmup_onecycle", "onecycle", 0.1, LR_STEPS, 5, 0.1,
         "SequentialLR([LinearLR(start_factor=0.1, total_iters=5), OneCycleLR(max_lr=0.1, "
         "total_steps=45, cycle_momentum=False)], milestones=[5])",
         warmed(5, 0.1, lambda o: sched.OneCycleLR(o, max_lr=0.1, total_steps=45,
                                                   cycle_momentum=False))),
        ("warmup_constant", "constant", 0.1, LR_STEPS, 10, 0.5,
         "LinearLR(start_factor=0.5, total_iters=10)",
         lambda o: sched.LinearLR(o, start_factor=0.5, total_iters=10)),
    )


def write_lr_schedules(out):
    cases = []
    for name, spec, base_lr, total, warmup, start_factor, text, make in lr_cases():
        cases.append(dict(name=name, spec=spec, base_lr=base_lr, total_steps=total,
                          warmup_steps=warmup, warmup_start_factor=start_factor, torch=text,
                          lrs=lr_sequence(base_lr, make, LR_STEPS)))
    with open(out / "lr_schedules.json", "w") as f:
        json.dump({"cases": cases}, f, indent=1)
        f.write("\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_out = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "train"
    parser.add_argument("--out", type=Path, default=default_out,
                        help="output folder (default: tests/fixtures/train of this repository)")
    args = parser.parse_args()
    ref.setup_torch()
    args.out.mkdir(parents=True, exist_ok=True)
    write_cross_entropy(args.out)
    write_sgd(args.out)
    write_lr_schedules(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
