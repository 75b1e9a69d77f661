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

Nothing a file holds is trusted either. `load` reads adapters.json and the weights as regular
files of the export's folder, bounded in size (core/regular.py: no link out of the folder, no
FIFO or device), adapters.json into ExportInfo (info.py: each field, and the fields against
each other), the weights through the one header reader (tensorfile.py); then each tensor
against adapters.json's keys, counts and sizes, and against the base (structure.py: the base's
dtype and shape, or what the mode adds on a host of the base; every tensor the mode trains),
before the digest of the frozen base and before anything is written. `export` runs the same
checks on what it is about to write.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib
import io
import json
import math
from pathlib import Path

from ..core import atomic, ownership
from ..core.atomic import write_bytes, write_json
from ..core.digests import sha256_bytes, sha256_file
from ..core.errors import PekitError
from ..core.regular import check_regular, read_regular
from ..facts.vocabulary import MODES, PE
from . import structure, tensorfile
from .info import FORMAT, ExportInfo
from .structure import (  # noqa: F401 (the names this module has always offered)
    ADAPTER,
    ENCODER_BIAS,
    HEADS,
    LORA,
    MODE_KEYS,
    PE_MODE,
    is_trained,
)

WEIGHTS = "adapters.safetensors"
INFO = "adapters.json"  # what an export holds and which base it belongs on
MAX_INFO = 64 << 20  # bytes: an adapters.json beyond this is none of ours
MAX_WEIGHTS = tensorfile.MAX_FILE


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
        if run["mode"] in MODES:
            mode = structure.switches(run["mode"])
    if mode is None:
        # The modes that add tensors tell themselves by their names.
        adding = [m for m in MODES.values() if m.adds]
        found = [m for m in adding if any(m.trains_parameter(n) for n in state)]
        if not found:
            raise PekitError(
                f"{where}: no adapter parameters (no 'Adapt' or '.lora.' names) and no MMF "
                "config or run record saying which mode trained it; is this a PE, LoRA or "
                "BitFit run?"
            )
        mode = {k: False for k in MODE_KEYS}
        mode.update({m.switch: True for m in found}, freeze_base=True)
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


def tensors_digest(state_dict, names, where="the checkpoint"):
    """sha256 over the names, dtypes, shapes and bytes of `names` in `state_dict`, in name order."""
    torch = _torch()
    h = hashlib.sha256()
    for name in sorted(names):
        try:
            t = state_dict[name].detach().cpu().contiguous()
            h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
            if t.dtype == torch.bfloat16:
                t = t.view(torch.int16)
            h.update(t.numpy().tobytes())
        except (TypeError, RuntimeError) as e:
            raise PekitError(
                f"{where}: tensor {name!r}: {_first_line(e)}; expected a dense tensor of a "
                "plain dtype"
            ) from None
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


def load_checkpoint(path, data=None):
    """The object torch.save wrote to `path` (on the CPU; its bytes `data` when given, read
    already), loaded without running its code. `path` must be a regular file."""
    torch = _torch()
    if data is None:
        check_regular(path, "checkpoint")

    def source():
        return str(path) if data is None else io.BytesIO(data)

    ser = torch.serialization
    if not hasattr(ser, "get_unsafe_globals_in_checkpoint") or not hasattr(ser, "safe_globals"):
        raise PekitError(
            f"{path}: reading a checkpoint without running code needs torch 2.5 or newer (this "
            f"is {torch.__version__}); run this command in the kit's modern environment"
        )
    try:
        names = ser.get_unsafe_globals_in_checkpoint(source())
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
            return torch.load(source(), map_location="cpu", weights_only=True)
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
    weights = {n: state[n].detach().cpu().clone() for n in trained}
    hosts, rank = structure.layout({n: list(t.shape) for n, t in weights.items()}, mode, checkpoint)
    data = tensorfile.dumps(weights, {"format": FORMAT})
    info = {
        "format": FORMAT,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "run": run,
        "mode": mode,
        "source_checkpoint": {"path": str(checkpoint), "sha256": sha256_file(checkpoint)},
        "weights": {"file": WEIGHTS, "sha256": sha256_bytes(data), "bytes": len(data)},
        "parameters": sum(int(weights[n].numel()) for n in trained),
        "tensors": len(trained),
        # What the mode trained in the base (adapters, LoRA updates, bias terms): all but heads.
        "adapter_parameters": sum(
            int(weights[n].numel()) for n in trained if not is_trained(n, heads, {})
        ),
        "keys": sorted(trained),
        # What the mode adds to the model, per host: the loader derives every added tensor's
        # name and shape from it, and checks it against the base (structure.py).
        "sizes": {
            "pe_reduction": _reductions(raw, run, hosts, checkpoint)
            if structure.added_kind(mode) == PE
            else None,
            "lora_r": rank,
            "hosts": hosts,
        },
        "base": {
            "description": "the frozen pre-trained weights: every tensor of the model except "
            "the ones in this file",
            "tensors": len(frozen),
            "parameters": sum(int(state[n].numel()) for n in frozen),
            "digest": tensors_digest(state, frozen, checkpoint),
            "checkpoint": _base_record(base),
            "config": _base_config(raw),
        },
    }
    # What export writes, load reads: the same checks, before anything is written.
    where = f"{checkpoint} (its export's {INFO})"
    ExportInfo.from_dict(json.loads(json.dumps(info)), where)
    check_added_shapes(info["keys"], mode, hosts, rank, weights, where, checkpoint)
    if out_dir is None:
        # In the run's folder (RUN/adapters), else beside the checkpoint.
        run_dir = checkpoint.parent.parent if checkpoint.parent.name == "mmf" else checkpoint.parent
        out_dir = run_dir / "adapters"
    out_dir = atomic.output_folder(out_dir)
    check_export_folder(out_dir)
    write_bytes(out_dir / WEIGHTS, data)
    write_json(out_dir / INFO, info)
    info["dir"] = str(out_dir)
    return info


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _reductions(raw, run, hosts, where):
    """PE's reduction: set in each host pattern's record (the number its bottleneck follows
    from: int(hidden / reduction)), and returned when one number serves every host and the run
    records no other: the run's size, else the MMF config's pe_reduction, else its variant's
    default; else None."""
    size = (run or {}).get("size")
    recorded = (
        size.get("value") if isinstance(size, dict) and size.get("key") == "pe_reduction" else None
    )
    config = raw.get("config") if isinstance(raw, dict) else None
    configured = default = None
    try:
        model_config = config["model_config"][config["model"]]
        configured = model_config.get("pe_reduction")
        default = {"comb": 10, "text": 5}.get(model_config.get("pe_adapter_variant") or "comb")
    except (KeyError, TypeError, AttributeError):
        pass
    candidates = [c for c in (recorded, configured, default, 10, 5) if _number(c)]

    def fits(c, h):
        ratio = h["hidden_size"] / c
        return math.isfinite(ratio) and int(ratio) == h["bottleneck"]

    for record in hosts.values():
        exact = record["hidden_size"] / record["bottleneck"]
        found = [c for c in candidates + [exact] if fits(c, record)]
        if not found:
            raise PekitError(
                f"{where}: adapters of hidden size {record['hidden_size']} with bottleneck "
                f"{record['bottleneck']}: no reduction gives int(hidden / reduction) = bottleneck"
            )
        record["reduction"] = found[0]
    for c in candidates:
        if all(fits(c, h) for h in hosts.values()):
            if recorded is None or c == recorded:
                for record in hosts.values():
                    record["reduction"] = c
                return c
            return None
    return None


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


def export_folder(adapters):
    """The folder of an export: ADAPTERS itself, or the folder of the file named."""
    adapters = Path(adapters)
    return adapters if adapters.is_dir() else adapters.parent


def _parse_json(data, where):
    try:
        return json.loads(
            data.decode("utf-8"),
            object_pairs_hook=tensorfile._pairs,
            parse_constant=tensorfile._no_constant,
        )
    except UnicodeDecodeError as e:
        raise PekitError(f"{where}: not UTF-8 (byte {e.start})") from None
    except RecursionError:
        raise PekitError(f"{where}: nests too deep; expected the export's JSON object") from None
    except json.JSONDecodeError as e:
        raise PekitError(
            f"{where}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})"
        ) from None
    except ValueError as e:
        raise PekitError(f"{where}: not valid JSON ({e})") from None


def read_info(adapters):
    """The ExportInfo of an export's adapters.json, read as a bounded regular file in the
    export's folder and checked field by field."""
    folder = export_folder(adapters)
    where = folder / INFO
    data = read_regular(where, MAX_INFO, f"export's {INFO}", folder=folder)
    return ExportInfo.from_dict(_parse_json(data, where), str(where))


def read_export(adapters):
    """(info, weights) of an export, everything checked that needs no base: adapters.json's
    fields, the weights file (a regular file in the export's folder, of the recorded size and
    sha256, its header checked), its tensors against adapters.json's keys, parameters and
    sizes."""
    torch = _torch()
    info = read_info(adapters)
    folder = export_folder(adapters)
    where = folder / INFO
    path = folder / info.weights_file
    data = read_regular(
        path,
        MAX_WEIGHTS,
        "export's weights file",
        folder=folder,
        size=info.weights_bytes,
        size_from=f"field 'weights.bytes' of {where}",
    )
    if sha256_bytes(data) != info.weights_sha256:
        raise PekitError(f"{path}: sha256 differs from {where}; expected the export unchanged")
    if info.format == FORMAT:
        weights, _ = tensorfile.loads(data, str(path))
    else:
        weights = state_dict_of(load_checkpoint(path, data), path)
        if not all(isinstance(t, torch.Tensor) for t in weights.values()):
            raise PekitError(f"{path}: holds something other than tensors")
    keys = set(info.keys)
    for name in sorted(set(weights) ^ keys):
        if name in keys:
            raise PekitError(f"{path}: no tensor {name!r}, which the keys of {where} name")
        raise PekitError(f"{path}: tensor {name!r} is not among the keys of {where}")
    numel = sum(int(t.numel()) for t in weights.values())
    if numel != info.parameters:
        raise PekitError(
            f"{where}: field 'parameters' is {info.parameters}; expected {numel}, the elements "
            f"of the {len(weights)} tensors of {path.name}"
        )
    body = sum(int(t.numel()) for n, t in weights.items() if not is_trained(n, HEADS, {}))
    if info.adapter_parameters is not None and info.adapter_parameters != body:
        raise PekitError(
            f"{where}: field 'adapter_parameters' is {info.adapter_parameters}; expected "
            f"{body}, the elements of its tensors outside the head"
        )
    if info.sizes is None:  # an export older than `sizes`: the tensors' own
        hosts, rank = structure.layout(
            {n: list(t.shape) for n, t in weights.items()}, info.mode, path
        )
    else:
        hosts, rank = info.sizes.hosts, info.sizes.lora_r
    check_added_shapes(info.keys, info.mode, hosts, rank, weights, where, path, info.sizes)
    return info, weights


def check_added_shapes(keys, mode, hosts, rank, weights, where, path, recorded=True):
    """Each added tensor of `weights` has the shape the sizes `hosts` and `rank` give it."""
    for name, shape in structure.expected_added(keys, mode, hosts, rank, where).items():
        if list(weights[name].shape) != shape:
            raise PekitError(
                f"{path}: tensor {name!r} is {list(weights[name].shape)}; expected {shape} "
                f"({'the sizes of ' + str(where) if recorded else 'like its other tensors'})"
            )


def _hosts(info, weights, where):
    if info.sizes is not None:
        return info.sizes.hosts
    return structure.layout({n: list(t.shape) for n, t in weights.items()}, info.mode, where)[0]


def combine(info, weights, base_state, where="adapters", base_where="the base"):
    """The full state dict: `base_state`'s frozen tensors plus the exported ones, checked: each
    exported tensor fits the base (structure.check_against_base), and the base's frozen tensors
    are the ones the adapters were trained on (their digest)."""
    structure.check_against_base(
        set(info.keys),
        weights,
        info.mode,
        _hosts(info, weights, where),
        base_state,
        where,
        base_where,
    )
    frozen = [n for n in base_state if n not in set(info.keys)]
    missing = len(frozen) != info.base_tensors
    if missing or tensors_digest(base_state, frozen, base_where) != info.base_digest:
        raise PekitError(
            f"{base_where}: holds {len(frozen)} frozen tensors with a different digest than the "
            f"adapters were trained on ({info.base_tensors} tensors, digest "
            f"{info.base_digest[:12]}); use the same base checkpoint"
        )
    full = dict(base_state)
    full.update(weights)
    return full


def load(adapters, base, out):
    """Write an MMF checkpoint `out` = `base` + adapters; returns its path. Everything is
    checked before `out` is written; a refusal writes nothing."""
    torch = _torch()
    out = atomic.output_file(out)
    info, weights = read_export(adapters)
    where = export_folder(adapters) / info.weights_file
    base_state = load_state_dict(base)
    full = combine(info, weights, base_state, where, base)
    buffer = io.BytesIO()
    torch.save({"model": full}, buffer)
    write_bytes(out, buffer.getvalue())
    return out
