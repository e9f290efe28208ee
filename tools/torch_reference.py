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
"""

import copy
import json
import math
import re
import struct
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

# Numerics contract (the README's "Numerics"): max|ours - torch| <= TOLERANCE * max|torch|.
TOLERANCE = 1e-4


def setup_torch(threads=2):
    """Configure torch for CPU reference runs (2 threads, as the comparisons in the README run)."""
    torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------------
# The seed's block
# ---------------------------------------------------------------------------------------


class ResidualBlock(nn.Module):
    """The seed's residual block: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)).

    The shortcut is an empty Sequential (identity) when stride == 1 and
    in_channels == out_channels, otherwise a 1x1 strided projection followed by BN.
    """

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride,
                               padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=1,
                               padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride,
                          bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x):
        """Forward pass exactly as the seed writes it (in-place add, in-place ReLU)."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return self.relu(out)


# ---------------------------------------------------------------------------------------
# Model names
# ---------------------------------------------------------------------------------------

BLOCK_PATTERN = re.compile(r"^block:(\d+),(\d+)(?:,(\d+))?$")

# torchvision 0.14 names accepted by our MODEL argument (the README's "MODEL names").
TORCHVISION_NAMES = (
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "wide_resnet50_2", "wide_resnet101_2", "resnext50_32x4d", "resnext101_32x8d",
    "resnext101_64x4d",
)

# The paper's CIFAR depths (6n + 2); plain twins exist for all but 1202.
CIFAR_DEPTHS = (20, 32, 44, 56, 110, 1202)
CIFAR_NAMES = tuple(f"resnet{d}" for d in CIFAR_DEPTHS) + tuple(
    f"plain{d}" for d in CIFAR_DEPTHS if d != 1202)

# Family defaults of ModelOptions::num_classes (include/resnet/models/zoo.h).
TORCHVISION_NUM_CLASSES = 1000
CIFAR_NUM_CLASSES = 10


def parse_block(model_name):
    """Parse `block:IN,OUT[,STRIDE]` into (in, out, stride), or return None if not a block."""
    match = BLOCK_PATTERN.match(model_name)
    if match is None:
        return None
    in_channels, out_channels = int(match.group(1)), int(match.group(2))
    stride = int(match.group(3)) if match.group(3) is not None else 1
    if in_channels < 1 or out_channels < 1 or stride < 1:
        raise ValueError(f"model '{model_name}': channels and stride must be >= 1")
    return in_channels, out_channels, stride


def build_block(model_name):
    """Build the seed's ResidualBlock from `block:IN,OUT[,STRIDE]`."""
    in_channels, out_channels, stride = parse_block(model_name)
    return ResidualBlock(in_channels, out_channels, stride)


def build_torchvision(model_name, num_classes=1000, in_channels=3):
    """Build `torchvision.models.NAME(num_classes=...)` with random (not pretrained) weights.

    in_channels != 3 replaces conv1 by the same 7x7/2 conv on that many channels, as our
    zoo does (torchvision itself has no such option).
    """
    import torchvision  # imported lazily: block models do not need it

    model = getattr(torchvision.models, model_name)(num_classes=num_classes)
    if in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3,
                                bias=False)
        nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    return model


# ---------------------------------------------------------------------------------------
# The paper's CIFAR networks, as our zoo builds them
# ---------------------------------------------------------------------------------------


class ZeroPadShortcut(nn.Module):
    """Shortcut option A (He et al. 2015, section 4.2), src/nn/zero_pad_shortcut.cpp.

    Takes every stride-th pixel (x[:, :, ::stride, ::stride]) and zero-pads the channels,
    (out - in) // 2 zero channels in front and the rest after. No parameters.
    """

    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride

    def forward(self, x):
        """[N, in, H, W] -> [N, out, ceil(H / stride), ceil(W / stride)]."""
        x = x[:, :, ::self.stride, ::self.stride]
        front = (self.out_channels - self.in_channels) // 2
        back = self.out_channels - self.in_channels - front
        return nn.functional.pad(x, (0, 0, 0, 0, front, back))

    def extra_repr(self):
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
                f"stride={self.stride}")


class BasicBlock(nn.Module):
    """torchvision's BasicBlock (same children, same forward), defined here so the CIFAR
    networks need no torchvision import: relu(bn2(conv2(relu(bn1(conv1(x))))) + sc(x)),
    sc = downsample (ZeroPadShortcut or Sequential(conv 1x1, BN)) or the identity.
    """

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=3, stride=stride, padding=1,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        """torchvision's BasicBlock.forward."""
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class PlainBlock(nn.Module):
    """BasicBlock without any shortcut (the paper's plain networks): relu(bn2(conv2(
    relu(bn1(conv1(x)))))); our zoo prints it as PlainBlock with the same children."""

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=3, stride=stride, padding=1,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(planes)

    def forward(self, x):
        """The main path only."""
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)))


class CifarResNet(nn.Module):
    """The paper's CIFAR network of depth 6n + 2 (src/nn/resnet.cpp, Stem::cifar).

    conv1 3x3/1 (in_channels -> 16), bn1, relu, layer1..3 of n blocks with 16/32/64
    planes (the first block of layer2 and layer3 has stride 2), avgpool, fc (64 ->
    num_classes). torchvision's ResNet structure without the maxpool, so printing and
    state_dict keys follow torchvision's conventions. shortcut 'A': ZeroPadShortcut where
    the shape changes; 'B': Sequential(Conv2d 1x1/stride, BatchNorm2d) there; plain:
    PlainBlock, no shortcut anywhere.
    """

    def __init__(self, depth, plain=False, shortcut="A", num_classes=CIFAR_NUM_CLASSES,
                 in_channels=3):
        super().__init__()
        if (depth - 2) % 6 != 0 or depth < 8:
            raise ValueError(f"CifarResNet: depth must be 6n + 2, got {depth}")
        if shortcut not in ("A", "B"):
            raise ValueError(f"CifarResNet: shortcut must be A or B, got '{shortcut}'")
        n = (depth - 2) // 6
        self.plain, self.shortcut = plain, shortcut
        self.inplanes = 16
        self.conv1 = nn.Conv2d(in_channels, 16, kernel_size=3, stride=1, padding=1,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(16, n, 1)
        self.layer2 = self._make_layer(32, n, 2)
        self.layer3 = self._make_layer(64, n, 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _make_layer(self, planes, blocks, stride):
        """torchvision's _make_layer with our shortcut choice."""
        layers = []
        for i in range(blocks):
            s = stride if i == 0 else 1
            if self.plain:
                layers.append(PlainBlock(self.inplanes, planes, s))
            else:
                downsample = None
                if s != 1 or self.inplanes != planes:
                    if self.shortcut == "A":
                        downsample = ZeroPadShortcut(self.inplanes, planes, s)
                    else:
                        downsample = nn.Sequential(
                            nn.Conv2d(self.inplanes, planes, kernel_size=1, stride=s,
                                      bias=False),
                            nn.BatchNorm2d(planes))
                layers.append(BasicBlock(self.inplanes, planes, s, downsample))
            self.inplanes = planes
        return nn.Sequential(*layers)

    def forward(self, x):
        """torchvision's ResNet._forward_impl without the maxpool."""
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def build_cifar(model_name, num_classes=CIFAR_NUM_CLASSES, in_channels=3, shortcut="A"):
    """resnetD / plainD (D in CIFAR_DEPTHS, no plain1202) -> CifarResNet."""
    if model_name not in CIFAR_NAMES:
        raise ValueError(f"unknown CIFAR model '{model_name}'")
    plain = model_name.startswith("plain")
    depth = int(model_name[len("plain" if plain else "resnet"):])
    return CifarResNet(depth, plain=plain, shortcut=shortcut, num_classes=num_classes,
                       in_channels=in_channels)


def build_model(model_name, num_classes=None, in_channels=3, shortcut="A"):
    """Return the torch.nn.Module for one of our MODEL names.

    Supported: `block:IN,OUT[,STRIDE]`, the torchvision names in TORCHVISION_NAMES and the
    CIFAR names in CIFAR_NAMES. num_classes None means the family's default (1000 for
    torchvision, 10 for CIFAR), as in our zoo; shortcut ('A' or 'B') is for CIFAR
    networks. Every tool goes through this function: add new families here.
    """
    if parse_block(model_name) is not None:
        return build_block(model_name)
    if model_name in TORCHVISION_NAMES:
        return build_torchvision(model_name, num_classes or TORCHVISION_NUM_CLASSES,
                                 in_channels)
    if model_name in CIFAR_NAMES:
        return build_cifar(model_name, num_classes or CIFAR_NUM_CLASSES, in_channels,
                           shortcut)
    raise ValueError(f"unknown model '{model_name}': expected block:IN,OUT[,STRIDE] "
                     f"or one of {', '.join(TORCHVISION_NAMES + CIFAR_NAMES)}")


def file_stem(model_name):
    """A file-name-safe stem for a MODEL string: 'block:5,8,2' -> 'block_5_8_2'."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", model_name)


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


# ---------------------------------------------------------------------------------------
# Files: safetensors and npy
# ---------------------------------------------------------------------------------------

_DTYPE_TO_SAFETENSORS = {
    torch.float32: "F32", torch.float64: "F64", torch.int64: "I64", torch.int32: "I32",
}
_SAFETENSORS_TO_NUMPY = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "I32": "<i4"}


def save_safetensors(path, tensors, metadata=None):
    """Write an ordered mapping name -> torch.Tensor as a .safetensors file.

    Layout: u64 little-endian header length, JSON header (names in the given order,
    optional "__metadata__" of str -> str) padded with spaces to a multiple of 8, then the
    raw little-endian data of each tensor in the same order.
    """
    header = OrderedDict()
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs, offset = [], 0
    for name, tensor in tensors.items():
        if tensor.dtype not in _DTYPE_TO_SAFETENSORS:
            raise ValueError(f"{name}: unsupported dtype {tensor.dtype}")
        dtype = _DTYPE_TO_SAFETENSORS[tensor.dtype]
        data = tensor.detach().cpu().contiguous().numpy().astype(
            _SAFETENSORS_TO_NUMPY[dtype], copy=False).tobytes(order="C")
        header[name] = {"dtype": dtype, "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for data in blobs:
            f.write(data)


def read_safetensors_header(path):
    """Return (header dict without __metadata__, metadata dict, data start offset)."""
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise ValueError(f"{path}: too short for a safetensors header length")
        (length,) = struct.unpack("<Q", raw)
        text = f.read(length)
        if len(text) != length:
            raise ValueError(f"{path}: header says {length} bytes, file has fewer")
    header = json.loads(text.decode("utf-8"), object_pairs_hook=OrderedDict)
    metadata = header.pop("__metadata__", {}) or {}
    return header, metadata, 8 + length


def load_safetensors(path, with_metadata=False):
    """Read a .safetensors file into an OrderedDict name -> torch.Tensor (file data order).

    With with_metadata=True, return (tensors, metadata).
    """
    header, metadata, start = read_safetensors_header(path)
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read()
    tensors = OrderedDict()
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        begin, end = info["data_offsets"]
        np_dtype = np.dtype(_SAFETENSORS_TO_NUMPY[info["dtype"]])
        count = int(np.prod(info["shape"], dtype=np.int64))
        if not 0 <= begin <= end <= len(data) or end - begin != count * np_dtype.itemsize:
            raise ValueError(f"{path}: tensor '{name}' has bad data_offsets {info}")
        array = np.frombuffer(data, dtype=np_dtype, count=count, offset=begin)
        tensors[name] = torch.from_numpy(array.reshape(info["shape"]).copy())
    return (tensors, metadata) if with_metadata else tensors


def save_npy(path, tensor):
    """Write a tensor or array as a float32, C-order .npy file."""
    if isinstance(tensor, torch.Tensor):
        tensor = tensor.detach().cpu().numpy()
    np.save(path, np.ascontiguousarray(tensor, dtype=np.float32))


def load_npy(path):
    """Read a .npy file as a float32 torch.Tensor."""
    return torch.from_numpy(np.load(path).astype(np.float32, copy=False).copy())
