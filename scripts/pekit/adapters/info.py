"""adapters.json, an export's account of itself, read into ExportInfo with every field checked
(type and range) and every field checked against the others: the count of tensors against the
keys, the keys against the mode, the mode against the run, the sizes against the keys.

    format               pekit-adapters/2 (the safetensors layout) or /1 (a torch.save file)
    mode                 the MODE_KEYS switches of a frozen-base mode (FC, PE, LoRA, BitFit)
    run                  the run's spec, or null; its mode and size agree with the above
    keys, tensors        the exported tensors' names (unique), and how many
    parameters           their elements in all; adapter_parameters, those outside the head
    weights              file (a name in the export's folder), sha256, bytes
    base                 tensors, parameters and digest of the frozen base it belongs on
    sizes                pe_reduction, lora_r, hosts {pattern: count and sizes} (structure.py);
                         absent in older exports, then derived from the tensors themselves
"""

from __future__ import annotations

import collections
import math
import re
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from ..core.errors import PekitError
from ..facts.vocabulary import LORA, MODES, PE
from . import structure

FORMAT = "pekit-adapters/2"
OLD_FORMAT = "pekit-adapters/1"  # the same, in a torch.save file: read with the safe loader
_SHA256 = re.compile(r"[0-9a-f]{64}")
HOST_FIELDS = {
    PE: ("count", "hidden_size", "bottleneck", "reduction"),
    LORA: ("count", "in_features", "out_features"),
}

# What each frozen-base mode trains, in words.
TRAINS = {name: m.trains_words for name, m in MODES.items() if m.freeze_base}


def _positive(value):
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _whole(value, low=0, high=1 << 40):
    return type(value) is int and low <= value <= high


@dataclass(frozen=True)
class Sizes:
    pe_reduction: Optional[float]  # PE's reduction, when one number gives every bottleneck
    lora_r: Optional[int]  # LoRA's rank
    # {host pattern: {count, hidden_size, bottleneck, reduction}, or LoRA's {count, in_features,
    # out_features}}
    hosts: Dict[str, Dict[str, Any]]
    recorded: bool = True  # False: derived from the tensors (an export older than `sizes`)

    def to_dict(self):
        return {"pe_reduction": self.pe_reduction, "lora_r": self.lora_r, "hosts": self.hosts}


@dataclass(frozen=True)
class ExportInfo:
    format: str
    mode: Dict[str, bool]
    mode_name: str  # fc, pe, lora, bitfit
    keys: Tuple[str, ...]
    parameters: int
    adapter_parameters: Optional[int]
    weights_file: str
    weights_sha256: str
    weights_bytes: Optional[int]
    base_tensors: int
    base_digest: str
    sizes: Optional[Sizes]
    run: Optional[Dict[str, Any]]
    doc: Dict[str, Any]  # the document as read

    @property
    def label(self):
        return MODES[self.mode_name].label

    @classmethod
    def from_dict(cls, doc, where="adapters.json"):
        def refuse(field, value, expected):
            text = repr(value)
            if len(text) > 80:
                text = text[:77] + "..."
            raise PekitError(f"{where}: field {field!r} is {text}; expected {expected}")

        def get(field, kind, expected, optional=False):
            value = doc
            for part in field.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if value is None and optional:
                return None
            if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
                refuse(field, value, expected)
            return value

        if not isinstance(doc, dict):
            raise PekitError(f"{where}: expected a JSON object")
        fmt = doc.get("format")
        if fmt not in (FORMAT, OLD_FORMAT):
            refuse("format", fmt, repr(FORMAT))
        get("created", str, "a date", optional=True)
        get("source_checkpoint", dict, "an object", optional=True)

        mode = get("mode", dict, f"an object of {', '.join(structure.MODE_KEYS)}")
        if sorted(mode) != sorted(structure.MODE_KEYS) or not all(
            type(v) is bool for v in mode.values()
        ):
            refuse("mode", mode, f"true or false for each of {', '.join(structure.MODE_KEYS)}")
        name = structure.mode_name(mode)
        if name is None:
            frozen = [n for n, m in MODES.items() if m.freeze_base]
            refuse("mode", mode, f"the switches of a frozen-base mode ({', '.join(frozen)})")
        label = MODES[name].label

        weights_file = get("weights.file", str, "a file name in the export's folder")
        if (
            weights_file in ("", ".", "..")
            or any(c in weights_file for c in "/\\\0")
            or len(weights_file) > 255
        ):
            refuse("weights.file", weights_file, "a file name in the export's folder")
        sha = get("weights.sha256", str, "64 hex digits")
        if not _SHA256.fullmatch(sha):
            refuse("weights.sha256", sha, "64 hex digits")
        size = get("weights.bytes", int, "a whole number of bytes", optional=True)
        if size is not None and size < 8:
            refuse("weights.bytes", size, "8 bytes or more")

        keys = get("keys", list, "a list of tensor names")
        if not keys or not all(isinstance(k, str) and k for k in keys):
            refuse("keys", keys, "a non-empty list of tensor names")
        if len(set(keys)) != len(keys):
            twice = sorted(k for k, n in collections.Counter(keys).items() if n > 1)[0]
            refuse("keys", keys, f"each name once ({twice!r} is repeated)")
        tensors = get("tensors", int, "a whole number")
        if tensors != len(keys):
            refuse("tensors", tensors, f"{len(keys)}, the number of keys")
        for key in keys:
            if not structure.is_trained(key, structure.HEADS, mode):
                raise PekitError(
                    f"{where}: key {key!r} is not a tensor {label} trains; expected {TRAINS[name]}"
                )
        parameters = get("parameters", int, "a whole number")
        if parameters < 0:
            refuse("parameters", parameters, "a whole number")
        adapter_parameters = get("adapter_parameters", int, "a whole number", optional=True)
        if adapter_parameters is not None and not 0 <= adapter_parameters <= parameters:
            refuse("adapter_parameters", adapter_parameters, f"0 to {parameters} (parameters)")

        base_tensors = get("base.tensors", int, "a whole number")
        if base_tensors < 0:
            refuse("base.tensors", base_tensors, "a whole number")
        digest = get("base.digest", str, "64 hex digits")
        if not _SHA256.fullmatch(digest):
            refuse("base.digest", digest, "64 hex digits")
        base_parameters = get("base.parameters", int, "a whole number", optional=True)
        if base_parameters is not None and base_parameters < 0:
            refuse("base.parameters", base_parameters, "a whole number")
        get("base.checkpoint", dict, "an object or null", optional=True)
        get("base.config", dict, "an object or null", optional=True)

        sizes = None
        if doc.get("sizes") is not None:
            sizes = _sizes(doc, name, mode, keys, get, refuse, where)
        run = _run(doc, name, sizes, get, refuse)
        return cls(
            format=fmt,
            mode=dict(mode),
            mode_name=name,
            keys=tuple(keys),
            parameters=parameters,
            adapter_parameters=adapter_parameters,
            weights_file=weights_file,
            weights_sha256=sha,
            weights_bytes=size,
            base_tensors=base_tensors,
            base_digest=digest,
            sizes=sizes,
            run=run,
            doc=doc,
        )


def _sizes(doc, name, mode, keys, get, refuse, where):
    kind = structure.added_kind(mode)
    label = MODES[name].label
    reduction = get("sizes.pe_reduction", (int, float), "a positive number or null", True)
    if reduction is not None and (kind != PE or not _positive(reduction)):
        refuse("sizes.pe_reduction", reduction, "null" if kind != PE else "a positive number")
    rank = get("sizes.lora_r", int, "a whole number or null", optional=True)
    if (kind == LORA) != (rank is not None) or (rank is not None and not _whole(rank, 1)):
        refuse("sizes.lora_r", rank, f"{label}'s rank" if kind == LORA else "null")
    hosts = get("sizes.hosts", dict, "an object of host patterns")
    if (kind is None) != (not hosts):
        refuse(
            "sizes.hosts",
            hosts,
            f"the hosts {label} adds tensors to" if kind else f"{{}} ({label} adds no tensor)",
        )
    fields = HOST_FIELDS.get(kind, ())
    for pattern, record in hosts.items():
        field = f"sizes.hosts.{pattern}"
        if (
            not pattern
            or not isinstance(record, dict)
            or sorted(record) != sorted(fields)
            or not all(_whole(v, 1) for k, v in record.items() if k != "reduction")
        ):
            refuse(field, record, f"an object of whole numbers (1 to 2^40) {', '.join(fields)}")
        if kind != PE:
            continue
        own = record["reduction"]
        if not _positive(own) or not math.isfinite(record["hidden_size"] / own):
            refuse(f"{field}.reduction", own, "a positive number (hidden_size / it finite)")
        if reduction is not None and own != reduction:
            refuse(f"{field}.reduction", own, f"{reduction} (sizes.pe_reduction)")
        if int(record["hidden_size"] / own) != record["bottleneck"]:
            refuse(
                f"{field}.bottleneck",
                record["bottleneck"],
                f"int({record['hidden_size']} / {own}) = {int(record['hidden_size'] / own)} "
                "(its hidden_size and reduction)",
            )
    # What the mode adds, as the sizes derive it, is exactly what the keys name.
    structure.expected_added(keys, mode, hosts, rank, where)
    return Sizes(pe_reduction=reduction, lora_r=rank, hosts=hosts)


def _run(doc, name, sizes, get, refuse):
    run = get("run", dict, "an object or null", optional=True)
    if run is None:
        return None
    mode = run.get("mode")
    if mode is None:
        return run
    if not isinstance(mode, str) or mode not in MODES or mode != name:
        refuse("run.mode", mode, f"{name!r}, the mode of field 'mode'")
    size = run.get("size")
    if size is None:
        return run
    key = MODES[name].size_key
    if (
        not isinstance(size, dict)
        or size.get("key") != key
        or not isinstance(size.get("value"), (int, float))
        or isinstance(size.get("value"), bool)
    ):
        refuse("run.size", size, f"{{'key': {key!r}, 'value': a number}}" if key else "null")
    recorded = None
    if sizes is not None:
        recorded = sizes.pe_reduction if name == PE else sizes.lora_r
    if recorded is not None and size["value"] != recorded:
        refuse("run.size.value", size["value"], f"{recorded}, the {key} of field 'sizes'")
    return run
