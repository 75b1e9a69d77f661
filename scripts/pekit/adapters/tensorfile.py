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
# numpy's names of the dtypes, little-endian ("<" added); BF16 is read as its 16-bit pattern.
_NP = {
    "F64": "f8",
    "F32": "f4",
    "F16": "f2",
    "I64": "i8",
    "I32": "i4",
    "I16": "i2",
    "I8": "i1",
    "U8": "u1",
    "BOOL": "b1",
}
MAX_HEADER = 100 << 20  # a header beyond this is no header of ours
MAX_RANK = 8  # dimensions of a tensor
MAX_DIM = 1 << 40  # elements along one dimension


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


def _pairs(pairs):
    """A JSON object whose names are unique (json keeps the last of repeated names silently)."""
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the name {key!r} is repeated")
        out[key] = value
    return out


def _no_constant(constant):
    raise ValueError(f"{constant} is not JSON")


def _is_int(value):
    return type(value) is int


def parse_header(data, label="tensors"):
    """(header entries {name: (dtype, shape, begin, end)}, metadata, data start) of a file's
    bytes, every field checked against the file: the one reader of the layout's header. A
    refusal is one TensorFileError naming `label` and the field."""
    if len(data) < 8:
        raise TensorFileError(f"{label}: {len(data)} bytes; expected a tensor file (8 or more)")
    (size,) = struct.unpack("<Q", bytes(data[:8]))
    if size > min(MAX_HEADER, len(data) - 8):
        raise TensorFileError(
            f"{label}: header length {size} does not fit in the file's {len(data)} bytes "
            f"(at most {MAX_HEADER}); expected a tensor file"
        )
    try:
        text = bytes(data[8 : 8 + size]).decode("utf-8")
    except UnicodeDecodeError as e:
        raise TensorFileError(f"{label}: the header is not UTF-8 (byte {8 + e.start})") from None
    try:
        header = json.loads(text, object_pairs_hook=_pairs, parse_constant=_no_constant)
    except RecursionError:
        raise TensorFileError(f"{label}: the header nests too deep; expected JSON") from None
    except json.JSONDecodeError as e:
        raise TensorFileError(
            f"{label}: the header is not JSON ({e.msg} at column {e.colno})"
        ) from None
    except ValueError as e:
        raise TensorFileError(f"{label}: the header is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise TensorFileError(f"{label}: the header is not a JSON object")
    metadata = header.pop("__metadata__", {})
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise TensorFileError(
            f"{label}: header field '__metadata__' is not an object of strings; expected one"
        )
    start = 8 + size
    body = len(data) - start
    entries = {}
    for name, spec in header.items():
        field = f"header field {name!r}"
        if not name:
            raise TensorFileError(f"{label}: a header field has an empty name; expected a name")
        if not isinstance(spec, dict) or sorted(spec) != ["data_offsets", "dtype", "shape"]:
            raise TensorFileError(
                f"{label}: {field} is {_brief(spec)}; expected an object of dtype, shape and "
                "data_offsets"
            )
        dtype, shape, offsets = spec["dtype"], spec["shape"], spec["data_offsets"]
        if not isinstance(dtype, str) or dtype not in DTYPES:
            raise TensorFileError(
                f"{label}: {field}.dtype is {_brief(dtype)}; expected one of {', '.join(DTYPES)}"
            )
        if (
            not isinstance(shape, list)
            or len(shape) > MAX_RANK
            or not all(_is_int(n) and 0 <= n <= MAX_DIM for n in shape)
        ):
            negative = isinstance(shape, list) and any(_is_int(n) and n < 0 for n in shape)
            raise TensorFileError(
                f"{label}: {field}.shape is {_brief(shape)}"
                + ("; negative dimension" if negative else "")
                + f"; expected at most {MAX_RANK} whole numbers from 0 to {MAX_DIM}"
            )
        if not (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(_is_int(x) for x in offsets)
            and 0 <= offsets[0] <= offsets[1] <= body
        ):
            raise TensorFileError(
                f"{label}: {field}.data_offsets is {_brief(offsets)}; expected [begin, end] "
                f"within the {body} bytes of data after the header"
            )
        begin, end = offsets
        count = 1
        for n in shape:
            count *= n
        itemsize = DTYPES[dtype][1]
        if end - begin != count * itemsize:
            raise TensorFileError(
                f"{label}: {field}: bytes {begin}..{end} do not hold {shape} of {dtype} "
                f"({count * itemsize} bytes)"
            )
        entries[name] = (dtype, shape, begin, end)
    # The tensors tile the data: no overlap, no hole, nothing after the last one.
    at, previous = 0, None
    for name, (_, _, begin, end) in sorted(entries.items(), key=lambda e: e[1][2:]):
        if begin < at:
            raise TensorFileError(
                f"{label}: header fields {previous[0]!r} and {name!r}: the tensors overlap in "
                f"the file (bytes {previous[1]}..{at} and {begin}..{end}); expected each its "
                "own bytes"
            )
        if begin > at:
            raise TensorFileError(
                f"{label}: header field {name!r}: bytes {at}..{begin} of the data belong to no "
                "tensor; expected the tensors back to back"
            )
        at, previous = end, (name, begin)
    if at != body:
        raise TensorFileError(
            f"{label}: {body - at} bytes after the last tensor; expected the file to end there"
        )
    return entries, metadata, start


def _brief(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def loads(data, label="tensors"):
    """({name: tensor}, metadata) from a file's bytes; anything else is refused."""
    import numpy as np

    torch = _torch()
    entries, metadata, start = parse_header(data, label)
    body = memoryview(data)[start:]
    tensors = {}
    for name, (dtype, shape, begin, end) in entries.items():
        torch_dtype = DTYPES[dtype][0]
        raw = np.frombuffer(body[begin:end], dtype="<i2" if dtype == "BF16" else "<" + _NP[dtype])
        if dtype == "BOOL" and raw.view(np.uint8).max(initial=0) > 1:
            raise TensorFileError(
                f"{label}: header field {name!r}: BOOL bytes other than 0 and 1; expected 0 or 1"
            )
        t = torch.from_numpy(raw.astype(raw.dtype.newbyteorder("="), copy=True)).reshape(shape)
        tensors[name] = t.view(torch.bfloat16) if torch_dtype == "bfloat16" else t
    return tensors, metadata


def save(path, tensors, metadata=None):
    from ..core.atomic import write_bytes

    write_bytes(path, dumps(tensors, metadata))


MAX_FILE = 4 << 30  # bytes: a tensor file beyond this is no adapter export


def load(path, folder=None, limit=MAX_FILE):
    """({name: tensor}, metadata) of the tensor file `path`: a regular file of at most `limit`
    bytes (inside `folder` when given), read once and checked as loads checks it."""
    from ..core.regular import read_regular

    return loads(read_regular(path, limit, "tensor file", folder=folder), str(path))
