"""Adapter-only checkpoints: export what a PE run trained, load it back onto the same base.

checkpoint.py   export, load, and reading MMF checkpoints without running their code
tensorfile.py   named tensors in the safetensors layout, without pickle
cli.py          `pekit adapters export|load`
"""

from .checkpoint import (
    ADAPTER,
    FORMAT,
    INFO,
    OLD_FORMAT,
    WEIGHTS,
    combine,
    export,
    is_trained,
    load,
    load_checkpoint,
    load_state_dict,
    read_export,
    tensors_digest,
)
from .tensorfile import TensorFileError

__all__ = [
    "ADAPTER",
    "FORMAT",
    "INFO",
    "OLD_FORMAT",
    "WEIGHTS",
    "TensorFileError",
    "combine",
    "export",
    "is_trained",
    "load",
    "load_checkpoint",
    "load_state_dict",
    "read_export",
    "tensors_digest",
]
