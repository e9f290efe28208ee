"""PyTorch reference side of the project: the seed's block, model names, file I/O.

Used by tools/gen_fixtures.py (committed test fixtures) and tools/check_against_torch.py
(the port check a user runs against the `resnet` binary). Run these tools with the
Debian interpreter that has python3-torch, e.g. `/usr/bin/python3 tools/gen_fixtures.py`.

Contents:
- ResidualBlock: the seed's block (conv3x3, BN, ReLU, conv3x3, BN, plus a shortcut, then add
  and ReLU), children and forward exactly as specified.
- CifarResNet, BasicBlock, PlainBlock, ZeroPadShortcut: the paper's CIFAR networks
  (He et al. 2015, section 4.2) exactly as our zoo builds them (same printed text, keys
  and numbers): resnet20 .. resnet1202, plain20 .. plain110, shortcut option A or B.
- build_model(MODEL): our MODEL names (the README's "MODEL names" table) -> torch.nn.Module.
- randomize_batchnorm(model, gen): non-trivial BN affine parameters and running stats.
- fill_deterministic(model, seed), deterministic_tensor(seed, name, shape): weights and
  inputs that C++ regenerates bit for bit (tests/support/deterministic_weights.h), so
  that fixtures for big models need not store them.
- save_safetensors / load_safetensors: the safetensors format, written by hand.
- save_npy / load_npy: float32 C-order .npy via numpy.

The networks live in torch_models.py, the deterministic scheme in deterministic_values.py
and the file formats in tensor_files.py; this module re-exports all of their names, so
tools import this one alone.
"""

import copy
from collections import OrderedDict

import torch
from torch import nn

# Re-exported: tools use them as torch_reference.NAME.
from deterministic_values import *  # noqa: F401,F403
from tensor_files import *  # noqa: F401,F403
from torch_models import *  # noqa: F401,F403

# Numerics contract (the README's "Numerics"): max|ours - torch| <= TOLERANCE * max|torch|.
TOLERANCE = 1e-4


def setup_torch(threads=2):
    """Configure torch for CPU reference runs (2 threads, as the comparisons in the README run)."""
    torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------------
# Random values that make tests able to fail
# ---------------------------------------------------------------------------------------


def randomize_batchnorm(model, gen, batches_tracked=3):
    """Give every BatchNorm2d non-trivial weight, bias, running_mean and running_var.

    Defaults (1, 0, 0, 1) would hide bugs such as a swapped weight/bias or ignored
    running statistics; num_batches_tracked is set to `batches_tracked`.
    """
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                shape = module.weight.shape
                module.weight.copy_(0.5 + torch.rand(shape, generator=gen))
                module.bias.copy_(0.5 * torch.randn(shape, generator=gen))
                module.running_mean.copy_(0.5 * torch.randn(shape, generator=gen))
                module.running_var.copy_(0.5 + 1.5 * torch.rand(shape, generator=gen))
                module.num_batches_tracked.fill_(batches_tracked)


def randomize_convolutions(model, gen):
    """Redraw every parameter that is not a BatchNorm's from N(0, 1/fan_in) (uses `gen`)."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen)
                                    / fan_in ** 0.5)
                if module.bias is not None:
                    module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=gen))


def randomize_model(model, gen):
    """Reproducibly randomize all of a model's parameters and BN buffers from `gen`."""
    randomize_convolutions(model, gen)
    randomize_batchnorm(model, gen)


# ---------------------------------------------------------------------------------------
# One reference pass
# ---------------------------------------------------------------------------------------


def reference_pass(model, x, grad_output, train):
    """Run forward and backward once; return (output, grad_input, grads, state_after).

    `model` is modified (its running statistics move in training mode). grads maps every
    parameter's state_dict name to its .grad; state_after is the state_dict after the pass.
    """
    model.train(train)
    model.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_(True)
    output = model(x)
    output.backward(grad_output)
    grads = OrderedDict((name, p.grad.detach().clone())
                        for name, p in model.named_parameters())
    state = OrderedDict((name, t.detach().clone()) for name, t in model.state_dict().items())
    return output.detach().clone(), x.grad.detach().clone(), grads, state


def float64_pass(model, x, grad_output, train):
    """reference_pass on a float64 copy of `model` (left untouched): near-exact values.

    Used to tell a real disagreement from float32 rounding noise in tensors whose exact
    value is (close to) zero, and to check that fixtures are well-conditioned.
    """
    model64 = copy.deepcopy(model).double()
    return reference_pass(model64, x.double(), grad_output.double(), train)
