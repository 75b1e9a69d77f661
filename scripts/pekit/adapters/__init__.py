"""Adapter-only checkpoints: export what a PE run trained, load it back onto the same base.

checkpoint.py   export, load, and reading MMF checkpoints without running their code
info.py         adapters.json read into ExportInfo, every field checked
structure.py    what each mode trains and adds, and the checks of an export against its base
tensorfile.py   named tensors in the safetensors layout, without pickle, its header checked
"""

from .checkpoint import (
    INFO,
    WEIGHTS,
    combine,
    export,
    load,
    load_checkpoint,
    load_state_dict,
    read_export,
    read_info,
    tensors_digest,
)
from .info import FORMAT, OLD_FORMAT, ExportInfo
from .structure import ADAPTER, is_trained
from .tensorfile import TensorFileError

__all__ = [
    "ADAPTER",
    "FORMAT",
    "INFO",
    "OLD_FORMAT",
    "WEIGHTS",
    "ExportInfo",
    "TensorFileError",
    "combine",
    "export",
    "is_trained",
    "load",
    "load_checkpoint",
    "load_state_dict",
    "read_export",
    "read_info",
    "tensors_digest",
]
