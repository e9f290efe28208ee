#!/usr/bin/env python3
"""Write the PyTorch reference fixtures of fine-tuning under tests/fixtures/finetune/.

Usage: /usr/bin/python3 tools/gen_finetune_fixtures.py [--out tests/fixtures/finetune]

Deterministic. The network is resnet20 (10 classes) with the deterministic weights of
torch_reference.fill_deterministic(SEED), which the C++ tests regenerate; the input
[4, 3, 12, 12] and the logits' gradient [4, 10] are deterministic_tensor(SEED, "input" /
"grad_output"). Files:
  freeze_<case>.safetensors  for each case of FREEZE_CASES: PyTorch in training mode with
                             every parameter under the frozen modules at
                             requires_grad=False and every BatchNorm there in eval mode,
                             one forward and backward(grad_output) with an input that
                             needs no gradient: output (the logits), grad.<p> for every
                             trainable parameter, state.<key> (every BN buffer after the
                             pass: frozen BN statistics unchanged, the others moved).
                             Metadata "freeze": the spec (--freeze syntax).
  soft_cross_entropy.safetensors  logits [6, 7], targets [6, 7] (MixUp-style soft targets:
                             lam onehot(y) + (1 - lam) onehot(y rolled by one), lam = 0.3),
                             grad.<i>: the gradient of F.cross_entropy(logits, targets,
                             label_smoothing=SMOOTHING[i]) w.r.t. the logits (float64 from
                             the float32 values), loss [len(SMOOTHING)] (F64).
"""

import argparse
import copy
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_reference as R  # noqa: E402

SEED = 7
FREEZE_CASES = {
    # the backward pass stops at layer2.0's input (a zero-padding shortcut block)
    "prefix": "conv1,bn1,layer1",
    # frozen blocks above trainable ones propagate gradients and compute none of their own
    "middle": "layer2,layer3.1.bn1",
}
SMOOTHING = [0.0, 0.1]


def frozen_modules(model, spec):
    paths = spec.split(",")
    for name, module in model.named_modules():
        if any(name == p or name.startswith(p + ".") for p in paths):
            yield module


def freeze_case(spec):
    model = R.fill_deterministic(R.build_model("resnet20", num_classes=10), SEED)
    x = R.deterministic_tensor(SEED, "input", (4, 3, 12, 12))
    grad_output = R.deterministic_tensor(SEED, "grad_output", (4, 10))
    model.train()
    for module in frozen_modules(model, spec):
        for p in module.parameters(recurse=False):
            p.requires_grad_(False)
        if isinstance(module, torch.nn.BatchNorm2d):
            module.eval()
    output = model(x)
    output.backward(grad_output)
    tensors = {"output": output.detach().clone()}
    for name, p in model.named_parameters():
        if p.requires_grad:
            tensors["grad." + name] = p.grad.detach().clone()
    for key, t in model.state_dict().items():
        if "running_" in key or "num_batches_tracked" in key:
            tensors["state." + key] = t.detach().clone()
    return tensors


def soft_cross_entropy():
    gen = torch.Generator().manual_seed(SEED)
    logits = (torch.randn(6, 7, generator=gen) * 3).float()
    labels = torch.tensor([0, 3, 3, 6, 1, 2])
    lam = 0.3
    one_hot = F.one_hot(labels, 7).float()
    targets = (one_hot.roll(1, 0) * (1 - lam) + one_hot * lam).float()
    tensors = {"logits": logits, "targets": targets}
    losses = []
    for i, eps in enumerate(SMOOTHING):
        z = logits.double().requires_grad_(True)
        loss = F.cross_entropy(z, targets.double(), label_smoothing=eps)
        loss.backward()
        tensors[f"grad.{i}"] = z.grad.float()
        losses.append(loss.item())
    tensors["loss"] = torch.tensor(losses, dtype=torch.float64)
    return tensors


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="tests/fixtures/finetune")
    args = parser.parse_args()
    R.setup_torch()
    os.makedirs(args.out, exist_ok=True)
    for case, spec in FREEZE_CASES.items():
        R.save_safetensors(os.path.join(args.out, f"freeze_{case}.safetensors"),
                           freeze_case(spec), {"freeze": spec})
    R.save_safetensors(os.path.join(args.out, "soft_cross_entropy.safetensors"),
                       soft_cross_entropy(), {"label_smoothing": ",".join(map(str, SMOOTHING))})


if __name__ == "__main__":
    main()
