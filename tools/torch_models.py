"""The networks of the PyTorch reference side, by our MODEL names.

- ResidualBlock: the seed's block (conv3x3, BN, ReLU, conv3x3, BN, plus a shortcut, then add
  and ReLU), children and forward exactly as specified.
- CifarResNet, BasicBlock, PlainBlock, ZeroPadShortcut: the paper's CIFAR networks
  (He et al. 2015, section 4.2) exactly as our zoo builds them (same printed text, keys
  and numbers): resnet20 .. resnet1202, plain20 .. plain110, shortcut option A or B.
- build_model(MODEL): our MODEL names (the README's "MODEL names" table) -> torch.nn.Module.

Imported through torch_reference, which re-exports every name.
"""

import re

import torch
from torch import nn


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
