"""PyTorch reference side of the project: the seed's block, model names, file I/O.

Used by tools/gen_fixtures.py (committed test fixtures) and tools/check_against_torch.py
(the port check a user runs against the `resnet` binary). Run these tools with the
Debian interpreter that has python3-torch, e.g. `/usr/bin/python3 tools/gen_fixtures.py`.

Contents:
- ResidualBlock: the seed's block (SEED.md), children and forward exactly as specified.
- build_model(MODEL): our MODEL names (DESIGN.md section 3) -> torch.nn.Module.
- randomize_batchnorm(model, gen): non-trivial BN affine parameters and running stats.
- save_safetensors / load_safetensors: the safetensors format, written by hand.
- save_npy / load_npy: float32 C-order .npy via numpy.
"""

import copy
import json
import re
import struct
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

# Numerics contract (DESIGN.md section 3): max|ours - torch| <= TOLERANCE * max|torch|.
TOLERANCE = 1e-4


def setup_torch(threads=2):
    """Configure torch for CPU reference runs (2 threads, as DESIGN.md asks)."""
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

# torchvision 0.14 names accepted by our MODEL argument (DESIGN.md section 3).
TORCHVISION_NAMES = (
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "wide_resnet50_2", "wide_resnet101_2", "resnext50_32x4d", "resnext101_32x8d",
)


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


def build_torchvision(model_name, num_classes=1000):
    """Build `torchvision.models.NAME(num_classes=...)` with random (not pretrained) weights."""
    import torchvision  # imported lazily: block models do not need it

    return getattr(torchvision.models, model_name)(num_classes=num_classes)


def build_model(model_name, num_classes=1000):
    """Return the torch.nn.Module for one of our MODEL names.

    Supported now: `block:IN,OUT[,STRIDE]` and the torchvision names in TORCHVISION_NAMES.
    Hook for more families (e.g. the paper's CIFAR resnet20/plain20 ...): add a branch
    here that returns the equivalent PyTorch module; every tool goes through this function.
    """
    if parse_block(model_name) is not None:
        return build_block(model_name)
    if model_name in TORCHVISION_NAMES:
        return build_torchvision(model_name, num_classes)
    raise ValueError(f"unknown model '{model_name}': expected block:IN,OUT[,STRIDE] "
                     f"or one of {', '.join(TORCHVISION_NAMES)}")


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
