"""Files of the PyTorch reference side: safetensors (written by hand) and float32 .npy
(via numpy). Imported through torch_reference, which re-exports every name.
"""

import json
import struct
from collections import OrderedDict

import numpy as np
import torch


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
