"""Deterministic values that C++ regenerates bit for bit (tests/support/deterministic_weights.h):
fill_deterministic(model, seed) and deterministic_tensor(seed, name, shape), so that
fixtures for big models need not store weights or inputs. Imported through
torch_reference, which re-exports every name.
"""

import math
import re
from collections import OrderedDict

import numpy as np
import torch
from torch import nn


# ---------------------------------------------------------------------------------------
# Deterministic values that C++ regenerates bit for bit
# ---------------------------------------------------------------------------------------
#
# The scheme (tests/support/deterministic_weights.h implements the same, and must change
# with it):
#   key      = seed XOR fnv1a64(name)          FNV-1a 64 over the UTF-8 bytes of name
#   z_i      = splitmix64 output i of a stream whose state starts at key, i = 0, 1, ...
#            = mix(key + (i + 1) * 0x9E3779B97F4A7C15)   (all arithmetic mod 2^64), with
#              mix(z) = z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27;
#                       z *= 0x94D049BB133111EB; z ^= z >> 31
#   u_i      = (z_i >> 40) * 2^-24              uniform in [0, 1), 24 bits: exact in f32
#   value_i  = float32((c0 + c1 * u_i + (-gap if u_i < 1/2 else +gap)) * scale)
#              c0, c1, gap small dyadic rationals, so that the sum is exact in double;
#              then one rounded double multiply and one round-to-nearest to float32:
#              the same bits in numpy and in C++.
# i is the flat (row-major) element index, name the state_dict key ("layer1.0.conv1.
# weight") or "input" / "grad_output".
#
# Fill rule per state_dict entry (DETERMINISTIC_RULES: c0, c1, gap, scale):
#   conv / linear weight (rank >= 2)  U(-1, 1) * sqrt(3 / fan_in), fan_in = numel / dim 0
#                                     (variance 1 / fan_in: unit-variance preserving)
#   bias of a conv / linear (rank 1)  U(-0.1, 0.1)
#   BatchNorm weight                  U[0.5, 1)
#   BatchNorm bias                    U[-2, -1) or U[1, 2), either with probability 1/2
#   last BN of a residual branch      weight 0.2 * U[0.5, 1), bias U[0.5, 1)
#   BN on a residual block's shortcut weight U[0.5, 1), bias U[0.5, 1)
#   running_mean                      U(-0.25, 0.25)
#   running_var                       0.5 + 1.5 * U[0, 1)
#   num_batches_tracked               3
#   inputs ("input", "grad_output")   U(-1, 1)
# ONNX initializers (onnx_initializer_rule) are filled by name and rank alone, since an
# export need not keep the module tree (folded BN biases are named "onnx::Conv_123"):
#   rank >= 2                         U(-1, 1) * sqrt(3 / fan_in), as a weight above
#   rank 1 named "*running_mean"      as running_mean above
#   rank 1 named "*running_var"       as running_var above
#   rank 1 named "*.weight"           as a BatchNorm weight above (U[0.5, 1))
#   rank 1 named "*.bias"             as a BatchNorm bias above (also a classifier's bias)
#   any other rank 1                  U(-0.1, 0.1) (a folded convolution's bias)
# Rank-1 weights are always BN scales (conv and linear weights have rank >= 2), and where
# torch shares one initializer among BN parameters of equal value (Identity nodes), the
# variances share with scales only, so every variance stays positive.
# A BatchNorm is recognised by a sibling "<prefix>.running_mean" in the state_dict. The
# last BN of a residual branch is child "bnK" with the largest K of a module whose type is
# one of RESIDUAL_BLOCK_TYPES (layer1.0.bn2 of a BasicBlock, layer1.0.bn3 of a Bottleneck;
# not a PlainBlock's); its shortcut is its child "downsample" or "shortcut".
#
# Why these values: a comparison with PyTorch at 1e-4 is only possible when no ReLU input
# (and no max-pool runner-up) lies within float32 rounding of its kink: where one side
# zeroes a gradient the other passes, gradients move by up to 10%. Two float32
# implementations differ by up to ~1e-5 of a layer's scale at ResNet-50's deep layers in
# training mode, and with BN weight ~1 and bias ~0 some of its million ReLU inputs always
# lies that close to 0: with BN weight 0.5 + U[0, 1) and bias U(-0.5, 0.5), ResNet-50's
# training-mode kink_safety (tools/gen_fixtures.py) was 0.01 to 0.14 on ten seeds, and on
# ResNet-18 our gradients missed PyTorch's by 14% and 9% on the two seeds below 0.2 while
# PyTorch float32 met float64 within 5e-6. So:
# - inside a branch, |bias| / weight is 1 to 4: each channel is mostly on or mostly off,
#   and the kink lies 1 to 4 standard deviations from the mean, where few values are;
# - a residual branch ends small (weight 0.1 to 0.2, as zero_init_residual and Goyal et
#   al. 2017 start it, but not at zero, so its gradients stay informative) with a
#   positive bias, and the shortcut's BN has a positive bias too: the block's sum stays
#   above 0, so its final ReLU almost never meets its kink. Small branches also keep the
#   error growth of training-mode statistics through 16 blocks in check (with full-size
#   branches PyTorch float32 misses float64 by 20% on ResNet-50 at 2x3x64x64).
# A consequence (exact, not rounding): in training mode, where a residual block's final
# ReLU passes everything and all that follows goes through batch statistics, the bias of
# its last BN shifts nothing and its gradient is exactly zero, so PyTorch's float32 value
# is rounding noise. The fixtures mark such tensors as ill-conditioned and compare them
# with float64 instead (tools/gen_fixtures.py).

_MASK64 = (1 << 64) - 1
_SPLITMIX_GAMMA = 0x9E3779B97F4A7C15
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3

# rule -> (c0, c1, gap, scale): value = float32((c0 + c1 * u +- gap) * scale), -gap for
# u < 1/2; scale None: sqrt(3 / fan_in).
DETERMINISTIC_RULES = OrderedDict([
    ("weight", (-1.0, 2.0, 0.0, None)),
    ("bias", (-1.0, 2.0, 0.0, 0.1)),
    ("bn_weight", (0.5, 0.5, 0.0, 1.0)),
    ("bn_bias", (-1.0, 2.0, 1.0, 1.0)),
    ("residual_bn_weight", (0.5, 0.5, 0.0, 0.2)),
    ("residual_bn_bias", (0.5, 0.5, 0.0, 1.0)),
    ("shortcut_bn_weight", (0.5, 0.5, 0.0, 1.0)),
    ("shortcut_bn_bias", (0.5, 0.5, 0.0, 1.0)),
    ("running_mean", (-0.5, 1.0, 0.0, 0.5)),
    ("running_var", (0.5, 1.5, 0.0, 1.0)),
    ("input", (-1.0, 2.0, 0.0, 1.0)),
])
NUM_BATCHES_TRACKED = 3
# Module types (class names as printed) whose last "bnK" child closes a residual branch,
# and the names of their shortcut child.
RESIDUAL_BLOCK_TYPES = ("BasicBlock", "Bottleneck", "ResidualBlock")
SHORTCUT_CHILDREN = ("downsample", "shortcut")
_BN_CHILD = re.compile(r"^bn(\d+)$")


def fnv1a64(text):
    """FNV-1a, 64 bit, over the UTF-8 bytes of `text`."""
    h = _FNV_OFFSET
    for byte in text.encode("utf-8"):
        h = ((h ^ byte) * _FNV_PRIME) & _MASK64
    return h


def splitmix64_stream(key, count, start=0):
    """Outputs start .. start+count-1 of splitmix64 seeded with `key`, as a uint64 array."""
    with np.errstate(over="ignore"):
        i = np.arange(start + 1, start + count + 1, dtype=np.uint64)
        z = np.uint64(key) + i * np.uint64(_SPLITMIX_GAMMA)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def deterministic_uniform(seed, name, count):
    """u_0 .. u_{count-1} in [0, 1) (float64 holding 24-bit values) for (seed, name)."""
    key = (int(seed) ^ fnv1a64(name)) & _MASK64
    z = splitmix64_stream(key, count)
    return (z >> np.uint64(40)).astype(np.float64) * (2.0 ** -24)


def deterministic_values(seed, name, shape, c0, c1, gap, scale):
    """float32 array of `shape`: float32((c0 + c1 * u +- gap) * scale) elementwise."""
    count = int(np.prod(shape, dtype=np.int64))
    u = deterministic_uniform(seed, name, count)
    exact = c0 + c1 * u + np.where(u < 0.5, -gap, gap)
    return (exact * scale).astype(np.float32).reshape(tuple(shape))


def deterministic_tensor(seed, name, shape):
    """A U(-1, 1) float32 tensor (the "input" rule) named `name`, e.g. "input"."""
    return torch.from_numpy(
        deterministic_values(seed, name, shape, *DETERMINISTIC_RULES["input"]))


def residual_bn_roles(model):
    """{BN prefix: "residual" or "shortcut"} for the BNs that feed a residual block's sum:
    the last "bnK" child of every RESIDUAL_BLOCK_TYPES module and every BN under its
    SHORTCUT_CHILDREN child."""
    roles = {}
    for prefix, module in model.named_modules():
        if type(module).__name__ not in RESIDUAL_BLOCK_TYPES:
            continue
        join = (lambda *parts: ".".join(p for p in parts if p))
        last = None
        for child_name, child in module.named_children():
            match = _BN_CHILD.match(child_name)
            if match and isinstance(child, nn.BatchNorm2d):
                if last is None or int(match.group(1)) > last[0]:
                    last = (int(match.group(1)), child_name)
            if child_name in SHORTCUT_CHILDREN and child is not None:
                for sub_name, sub in child.named_modules():
                    if isinstance(sub, nn.BatchNorm2d):
                        roles[join(prefix, child_name, sub_name)] = "shortcut"
        if last is not None:
            roles[join(prefix, last[1])] = "residual"
    return roles


def deterministic_rule(name, shape, state_names, roles=None):
    """The DETERMINISTIC_RULES key (or "num_batches_tracked") for state_dict entry `name`."""
    prefix, _, leaf = name.rpartition(".")
    is_bn = (prefix + ".running_mean" if prefix else "running_mean") in state_names
    role = (roles or {}).get(prefix)  # None, "residual" or "shortcut"
    if leaf in ("weight", "bias"):
        if is_bn:
            return f"{role}_bn_{leaf}" if role else f"bn_{leaf}"
        return leaf
    if leaf in ("running_mean", "running_var", "num_batches_tracked"):
        return leaf
    raise ValueError(f"fill_deterministic: no rule for state_dict entry '{name}' "
                     f"of shape {list(shape)}")


def deterministic_state_dict(model, seed):
    """OrderedDict name -> tensor: the deterministic values for every state_dict entry."""
    state = model.state_dict()
    names = set(state.keys())
    roles = residual_bn_roles(model)
    values = OrderedDict()
    for name, tensor in state.items():
        rule = deterministic_rule(name, tensor.shape, names, roles)
        if rule == "num_batches_tracked":
            values[name] = torch.full_like(tensor, NUM_BATCHES_TRACKED)
            continue
        c0, c1, gap, scale = DETERMINISTIC_RULES[rule]
        if scale is None:
            if tensor.dim() < 2:
                raise ValueError(f"fill_deterministic: weight '{name}' has rank "
                                 f"{tensor.dim()}, expected >= 2 (or a BatchNorm's)")
            scale = math.sqrt(3.0 / (tensor.numel() // tensor.shape[0]))
        values[name] = torch.from_numpy(
            deterministic_values(seed, name, tensor.shape, c0, c1, gap, scale))
    return values


def onnx_initializer_rule(name, shape):
    """(c0, c1, gap, scale) for the ONNX initializer `name` of `shape` (scheme above)."""
    shape = tuple(int(d) for d in shape)
    if len(shape) >= 2:
        fan_in = (int(np.prod(shape, dtype=np.int64)) // shape[0]) if shape[0] > 0 else 1
        return (-1.0, 2.0, 0.0, math.sqrt(3.0 / fan_in))
    if len(shape) != 1:
        raise ValueError(f"onnx_initializer_rule: '{name}' is a scalar")
    if name.endswith("running_mean"):
        return DETERMINISTIC_RULES["running_mean"]
    if name.endswith("running_var"):
        return DETERMINISTIC_RULES["running_var"]
    if name.endswith(".weight"):
        return DETERMINISTIC_RULES["bn_weight"]
    if name.endswith(".bias"):
        return DETERMINISTIC_RULES["bn_bias"]
    return DETERMINISTIC_RULES["bias"]


def onnx_initializer_values(seed, name, shape):
    """float32 array: the deterministic values of ONNX initializer `name` of `shape`."""
    return deterministic_values(seed, name, shape, *onnx_initializer_rule(name, shape))


def fill_deterministic(model, seed):
    """Overwrite every state_dict entry of `model` by the deterministic scheme above."""
    model.load_state_dict(deterministic_state_dict(model, seed))
    return model
