"""Named tensors in a file that holds data only: the safetensors layout, written and read here
without pickle (so without running anything a file could carry), on any torch the kit runs on.

Layout (https://huggingface.co/docs/safetensors): 8 bytes, little-endian, the length N of a
JSON header; N bytes of header, {name: {"dtype", "shape", "data_offsets": [begin, end]}, and
"__metadata__": {str: str}}; then the tensors' bytes, little-endian, each at its offsets. The
`safetensors` package reads these files too.
"""

from __future__ import annotations

import json
import struct

from ..core.errors import PekitError

# safetensors dtype names <-> torch dtype names, and their sizes in bytes.
DTYPES = {
    "F64": ("float64", 8),
    "F32": ("float32", 4),
    "F16": ("float16", 2),
    "BF16": ("bfloat16", 2),
    "I64": ("int64", 8),
    "I32": ("int32", 4),
    "I16": ("int16", 2),
    "I8": ("int8", 1),
    "U8": ("uint8", 1),
    "BOOL": ("bool", 1),
}
MAX_HEADER = 100 << 20  # a header beyond this is no header of ours


class TensorFileError(PekitError):
    """A file that is not named tensors in the safetensors layout."""


def _torch():
    import torch

    return torch


def _raw(tensor):
    """The tensor's bytes, little-endian, C order (bfloat16 through its 16-bit pattern)."""
    torch = _torch()
    t = tensor.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def dumps(tensors, metadata=None):
    """The file's bytes for {name: tensor} (and string metadata)."""
    torch = _torch()
    names = {getattr(torch, v[0]): k for k, v in DTYPES.items()}
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name in sorted(tensors):
        t = tensors[name]
        if t.dtype not in names:
            raise TensorFileError(f"tensor {name!r}: dtype {t.dtype} has no safetensors name")
        data = _raw(t)
        header[name] = {
            "dtype": names[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def loads(data, label="tensors"):
    """({name: tensor}, metadata) from a file's bytes; anything else is refused."""
    import numpy as np

    torch = _torch()
    if len(data) < 8:
        raise TensorFileError(f"{label}: {len(data)} bytes; not a tensor file")
    (size,) = struct.unpack("<Q", data[:8])
    if size > min(MAX_HEADER, len(data) - 8):
        raise TensorFileError(f"{label}: header of {size} bytes does not fit; not a tensor file")
    try:
        header = json.loads(data[8 : 8 + size].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise TensorFileError(f"{label}: the header is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise TensorFileError(f"{label}: the header is not a JSON object")
    metadata = header.pop("__metadata__", {}) or {}
    body = memoryview(data)[8 + size :]
    tensors, spans = {}, []
    for name, spec in header.items():
        where = f"{label}: tensor {name!r}"
        try:
            dtype, itemsize = DTYPES[spec["dtype"]]
            shape = [int(n) for n in spec["shape"]]
            begin, end = (int(x) for x in spec["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise TensorFileError(f"{where}: expected dtype, shape and data_offsets") from None
        count = 1
        for n in shape:
            if n < 0:
                raise TensorFileError(f"{where}: negative dimension in {shape}")
            count *= n
        if not 0 <= begin <= end <= len(body) or end - begin != count * itemsize:
            raise TensorFileError(
                f"{where}: bytes {begin}..{end} do not hold {shape} of {spec['dtype']}"
            )
        spans.append((begin, end))
        raw = np.frombuffer(body[begin:end], dtype="<i2" if dtype == "bfloat16" else dtype)
        t = torch.from_numpy(raw.copy()).reshape(shape)
        tensors[name] = t.view(torch.bfloat16) if dtype == "bfloat16" else t
    spans.sort()
    if any(a[1] > b[0] for a, b in zip(spans, spans[1:])):
        raise TensorFileError(f"{label}: tensors overlap in the file")
    return tensors, metadata


def save(path, tensors, metadata=None):
    from ..core.atomic import write_bytes

    write_bytes(path, dumps(tensors, metadata))


def load(path):
    with open(str(path), "rb") as f:
        return loads(f.read(), str(path))
