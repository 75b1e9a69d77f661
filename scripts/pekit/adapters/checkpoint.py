"""Adapter-only checkpoints: keep what a frozen-base run trained (PE ~8 MB), not the whole
model (~450 MB).

`export` takes a run's best checkpoint (MMF's `{"model": state_dict, ...}`) and writes the
parameters its mode trains and the classifier head: PE's adapters (`Adapt*`), LoRA's updates
(`*.lora.A`, `*.lora.B`), BitFit's encoder bias terms, with adapters.json naming the base they
belong on. The mode is read from the checkpoint's MMF config (else the run's record, else the
tensors' names). The base is everything else: the frozen pre-trained weights. adapters.json
holds a digest of those frozen tensors, so `load` accepts only the same base and then
reproduces the full model exactly (same tensors, so the same predictions).

Nothing a file holds is run: the export is data only (the safetensors layout, pekit.tensorfile),
and MMF checkpoints are read with torch's weights-only unpickler, which admits tensors, plain
containers and the data classes of MMF's configs (OmegaConf) and refuses anything else.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib
import io
import json
import re
from pathlib import Path

from ..core import atomic, ownership
from ..core.atomic import write_bytes, write_json
from ..core.digests import sha256_file
from ..core.errors import PekitError
from . import tensorfile

FORMAT = "pekit-adapters/2"
OLD_FORMAT = "pekit-adapters/1"  # the same, in a torch.save file: read with the safe loader
WEIGHTS = "adapters.safetensors"
INFO = "adapters.json"  # what an export holds and which base it belongs on
# What a frozen-base mode trains besides the classification head, as the patched MMF models
# unfreeze it: PE the adapter blocks, LoRA its updates, BitFit the encoder's bias terms.
ADAPTER = re.compile(r"(^|\.)adapt", re.IGNORECASE)
LORA = re.compile(r"\.lora\.")
ENCODER_BIAS = re.compile(r"(^|\.)bert\.encoder\..*\.bias$")
HEADS = ("classifier",)
MODE_KEYS = ("freeze_base", "pe_adapter", "lora", "bitfit")
PE_MODE = {"freeze_base": True, "pe_adapter": True, "lora": False, "bitfit": False}


def is_trained(name, heads=HEADS, mode=None):
    """Whether `mode` (the MODE_KEYS switches; PE's by default) trains parameter `name`."""
    mode = PE_MODE if mode is None else mode
    return (
        any(h in name.split(".") for h in heads)
        or (mode.get("pe_adapter") and bool(ADAPTER.search(name)))
        or (mode.get("lora") and bool(LORA.search(name)))
        or (mode.get("bitfit") and bool(ENCODER_BIAS.search(name)))
    )


def mode_of(raw, state, run, where):
    """The MODE_KEYS switches the checkpoint was trained with: from its MMF config (the
    model's model_config), else its run record, else the tensors' names (PE, LoRA)."""
    config = raw.get("config") if isinstance(raw, dict) else None
    try:
        model_config = config["model_config"][config["model"]]
        mode = {k: bool(model_config.get(k, False)) for k in MODE_KEYS}
    except (KeyError, TypeError, AttributeError):
        mode = None
    if mode is None and run and run.get("mode"):
        from ..vocabulary import MODES

        m = MODES.get(run["mode"])
        if m is not None:
            mode = {
                "freeze_base": m.freeze_base,
                "pe_adapter": m.pe_adapter,
                "lora": m.switch == "lora",
                "bitfit": m.switch == "bitfit",
            }
    if mode is None:
        pe = any(ADAPTER.search(n) for n in state)
        lora = any(LORA.search(n) for n in state)
        if not (pe or lora):
            raise PekitError(
                f"{where}: no adapter parameters (no 'Adapt' or '.lora.' names) and no MMF "
                "config or run record saying which mode trained it; is this a PE, LoRA or "
                "BitFit run?"
            )
        mode = {"freeze_base": True, "pe_adapter": pe, "lora": lora, "bitfit": False}
    if not mode["freeze_base"]:
        raise PekitError(
            f"{where}: a Full-FT run (freeze_base false) trains every parameter; there is no "
            "smaller export than the checkpoint itself"
        )
    return mode


def _torch():
    try:
        import torch
    except ImportError:
        raise PekitError(
            "adapter checkpoints need torch; run this in the kit's environment"
        ) from None
    return torch


def tensors_digest(state_dict, names):
    """sha256 over the names, dtypes, shapes and bytes of `names` in `state_dict`, in name order."""
    torch = _torch()
    h = hashlib.sha256()
    for name in sorted(names):
        t = state_dict[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        if t.dtype == torch.bfloat16:
            t = t.view(torch.int16)
        h.update(t.numpy().tobytes())
    return h.hexdigest()


# What an MMF checkpoint holds besides tensors and containers: its config, as OmegaConf objects.
# Their unpickling sets fields; nothing else the file names is admitted.
SAFE_MODULES = ("omegaconf.",)
SAFE_GLOBALS = {
    "typing.Any",
    "collections.defaultdict",
    "collections.OrderedDict",
    "builtins.set",
    "builtins.frozenset",
    "builtins.slice",
    "builtins.complex",
}


def _admitted(name):
    return name in SAFE_GLOBALS or name.startswith(SAFE_MODULES)


def load_checkpoint(path):
    """The object torch.save wrote to `path` (on the CPU), loaded without running its code."""
    torch = _torch()
    ser = torch.serialization
    if not hasattr(ser, "get_unsafe_globals_in_checkpoint") or not hasattr(ser, "safe_globals"):
        raise PekitError(
            f"{path}: reading a checkpoint without running code needs torch 2.5 or newer (this "
            f"is {torch.__version__}); run this command in the kit's modern environment"
        )
    try:
        names = ser.get_unsafe_globals_in_checkpoint(str(path))
    except Exception as e:
        raise PekitError(f"{path}: not a torch checkpoint ({_first_line(e)})") from None
    refused = sorted(n for n in names if not _admitted(n))
    if refused:
        raise PekitError(
            f"{path}: refusing to load it: it names {', '.join(refused[:3])}, which is code, "
            "not a tensor or a config value"
        )
    allowed = []
    for name in names:
        module, _, attr = name.rpartition(".")
        try:
            allowed.append(getattr(importlib.import_module(module), attr))
        except (ImportError, AttributeError):
            raise PekitError(f"{path}: names {name}, which this environment lacks") from None
    try:
        with ser.safe_globals(allowed):
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        raise PekitError(f"{path}: cannot load checkpoint: {_first_line(e)}") from None


def _first_line(error):
    lines = str(error).strip().splitlines()
    return lines[0] if lines else error.__class__.__name__


def state_dict_of(ckpt, path):
    """The model state dict of an MMF checkpoint (best.ckpt, current.ckpt, *_final.pth)."""
    if isinstance(ckpt, dict) and isinstance(ckpt.get("model"), dict):
        ckpt = ckpt["model"]
    if not isinstance(ckpt, dict) or not all(hasattr(v, "shape") for v in ckpt.values()):
        raise PekitError(
            f"{path}: expected an MMF checkpoint ({{'model': state_dict}}) or a "
            "state dict of tensors"
        )
    return ckpt


def load_state_dict(path):
    return state_dict_of(load_checkpoint(path), path)


def _resolve_checkpoint(source):
    """A run folder (its MMF best.ckpt) or a checkpoint file."""
    source = Path(source)
    if source.is_dir():
        for candidate in (source / "mmf" / "best.ckpt", source / "best.ckpt"):
            if candidate.is_file():
                return candidate
        raise PekitError(f"{source}: no best.ckpt (looked in {source / 'mmf'} and {source})")
    if not source.is_file():
        raise PekitError(f"{source}: no such run folder or checkpoint")
    return source


def _run_info(checkpoint):
    """The run's spec, when the checkpoint sits in a pekit run folder (MMF's save dir in it)."""
    from ..run import record

    for folder in (checkpoint.parent, checkpoint.parent.parent):
        try:
            found = record.load(folder)
        except PekitError:
            return None
        if found is not None:
            return found.run
    return None


def check_export_folder(out_dir):
    """Refuse (one line, nothing written) to write over an adapters.json or
    adapters.safetensors in `out_dir` that is not an earlier export of the kit: an
    adapters.json of its format, and the weights file it records (by sha256). The folder's
    other files are never touched."""
    out_dir = Path(out_dir)
    weights, info = out_dir / WEIGHTS, out_dir / INFO
    if not (weights.exists() or weights.is_symlink() or info.exists() or info.is_symlink()):
        return
    doc = None
    if info.is_file() and not info.is_symlink():
        try:
            doc = json.loads(info.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeError, RecursionError):
            doc = None
    ours = (
        isinstance(doc, dict)
        and str(doc.get("format", "")).startswith("pekit-adapters/")
        and isinstance(doc.get("weights"), dict)
    )
    if (info.exists() or info.is_symlink()) and not ours:
        raise ownership.refuse(info, "not an adapters.json pekit exported", INSTEAD)
    if weights.exists() or weights.is_symlink():
        recorded = doc["weights"].get("sha256") if ours else None
        if weights.is_symlink() or not weights.is_file() or sha256_file(weights) != recorded:
            raise ownership.refuse(
                weights,
                f"not the adapters pekit exported there (its {INFO} does not record it)",
                INSTEAD,
            )


INSTEAD = "give another --out"


def export(source, out_dir=None, base=None, heads=HEADS):
    """Write adapters.safetensors and adapters.json for the frozen-base checkpoint `source`
    (PE, LoRA, BitFit, FC); returns the info."""
    checkpoint = _resolve_checkpoint(source)
    raw = load_checkpoint(checkpoint)
    state = state_dict_of(raw, checkpoint)
    run = _run_info(checkpoint)
    mode = mode_of(raw, state, run, checkpoint)
    trained = [n for n in state if is_trained(n, heads, mode)]
    if not trained:
        raise PekitError(f"{checkpoint}: none of its tensors is one its mode trains")
    frozen = [n for n in state if n not in set(trained)]
    if out_dir is None:
        # In the run's folder (RUN/adapters), else beside the checkpoint.
        run_dir = checkpoint.parent.parent if checkpoint.parent.name == "mmf" else checkpoint.parent
        out_dir = run_dir / "adapters"
    out_dir = atomic.output_folder(out_dir)
    check_export_folder(out_dir)
    weights = {n: state[n].detach().cpu().clone() for n in trained}
    tensorfile.save(out_dir / WEIGHTS, weights, {"format": FORMAT})
    info = {
        "format": FORMAT,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "run": run,
        "mode": mode,
        "source_checkpoint": {"path": str(checkpoint), "sha256": sha256_file(checkpoint)},
        "weights": {
            "file": WEIGHTS,
            "sha256": sha256_file(out_dir / WEIGHTS),
            "bytes": (out_dir / WEIGHTS).stat().st_size,
        },
        "parameters": sum(int(weights[n].numel()) for n in trained),
        "tensors": len(trained),
        # What the mode trained in the base (adapters, LoRA updates, bias terms): all but heads.
        "adapter_parameters": sum(
            int(weights[n].numel()) for n in trained if not is_trained(n, heads, {})
        ),
        "keys": sorted(trained),
        "base": {
            "description": "the frozen pre-trained weights: every tensor of the model except "
            "the ones in this file",
            "tensors": len(frozen),
            "parameters": sum(int(state[n].numel()) for n in frozen),
            "digest": tensors_digest(state, frozen),
            "checkpoint": _base_record(base),
            "config": _base_config(raw),
        },
    }
    write_json(out_dir / INFO, info)
    info["dir"] = str(out_dir)
    return info


def _base_record(base):
    if base is None:
        return None
    base = Path(base)
    if not base.is_file():
        raise PekitError(f"base checkpoint {base}: no such file")
    return {"path": str(base), "sha256": sha256_file(base)}


def _base_config(ckpt):
    """Which pre-trained model the run started from (MMF's resume_zoo), from the checkpoint."""
    config = ckpt.get("config") if isinstance(ckpt, dict) else None
    if not isinstance(config, dict):
        return None
    checkpoint = config.get("checkpoint") or {}
    return {"model": config.get("model"), "resume_zoo": checkpoint.get("resume_zoo")}


def read_export(adapters):
    """(info, weights) of an export, every field it relies on checked first."""
    adapters = Path(adapters)
    folder = adapters if adapters.is_dir() else adapters.parent
    where = folder / INFO
    try:
        with open(where, encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, ValueError) as e:
        raise PekitError(f"{where}: cannot read the export's adapters.json: {e}") from None
    if not isinstance(info, dict):
        raise PekitError(f"{where}: expected a JSON object")
    if info.get("format") not in (FORMAT, OLD_FORMAT):
        raise PekitError(f"{where}: field 'format' is {info.get('format')!r}, expected {FORMAT!r}")
    for field, kind, check in (
        ("weights.file", str, lambda v: v and "/" not in v and "\\" not in v and v not in ".."),
        ("weights.sha256", str, lambda v: len(v) == 64),
        ("keys", list, lambda v: v and all(isinstance(k, str) for k in v)),
        ("base.tensors", int, lambda v: v >= 0),
        ("base.digest", str, lambda v: len(v) == 64),
    ):
        value = info
        for part in field.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if type(value) is not kind or not check(value):
            raise PekitError(
                f"{where}: field {field!r} is {value!r}; expected a valid {kind.__name__}"
            )
    weights_path = folder / info["weights"]["file"]
    if sha256_file(weights_path) != info["weights"]["sha256"]:
        raise PekitError(f"{weights_path}: sha256 differs from {where}")
    if info["format"] == FORMAT:
        weights, _ = tensorfile.load(weights_path)
    else:
        weights = load_state_dict(weights_path)
    if sorted(weights) != sorted(info["keys"]):
        raise PekitError(
            f"{weights_path}: its tensors are not the {len(info['keys'])} keys of {where}"
        )
    return info, weights


def combine(info, weights, base_state):
    """The full state dict: `base_state`'s frozen tensors plus the exported ones, checked."""
    frozen = [n for n in base_state if n not in set(info["keys"])]
    missing = len(frozen) != info["base"]["tensors"]
    if missing or tensors_digest(base_state, frozen) != info["base"]["digest"]:
        raise PekitError(
            f"the base holds {len(frozen)} frozen tensors with a different digest than the "
            f"adapters were trained on ({info['base']['tensors']} tensors, digest "
            f"{info['base']['digest'][:12]}); use the same base checkpoint"
        )
    full = dict(base_state)
    full.update(weights)
    return full


def load(adapters, base, out):
    """Write an MMF checkpoint `out` = `base` + adapters; returns its path."""
    torch = _torch()
    out = atomic.output_file(out)
    info, weights = read_export(adapters)
    base_state = load_state_dict(base)
    full = combine(info, weights, base_state)
    buffer = io.BytesIO()
    torch.save({"model": full}, buffer)
    write_bytes(out, buffer.getvalue())
    return out
