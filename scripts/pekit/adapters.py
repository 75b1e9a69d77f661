"""Adapter-only checkpoints: keep what PE trained (~8 MB), not the whole model (~450 MB).

`export` takes a PE run's best checkpoint (MMF's `{"model": state_dict, ...}`) and writes the
parameters PE trains, the adapters (`Adapt*`) and the classifier head, with a manifest naming the
base they belong on. The base is everything else: the frozen pre-trained weights. The manifest holds
a digest of those frozen tensors, so `load` accepts only the same base and then reproduces the full
model exactly (same tensors, so the same predictions).
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import re
from pathlib import Path

from .atomic import write_bytes, write_json
from .digests import sha256_file
from .errors import PekitError

FORMAT = "pekit-adapters/1"
WEIGHTS = "adapters.pth"
MANIFEST = "adapters.json"
# PE trains the adapter blocks and the classification head; the frozen base is everything else.
ADAPTER = re.compile(r"(^|\.)adapt", re.IGNORECASE)
HEADS = ("classifier",)


def is_trained(name, heads=HEADS):
    parts = name.split(".")
    return bool(ADAPTER.search(name)) or any(h in parts for h in heads)


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


def load_checkpoint(path):
    """The object torch.save wrote to `path` (on the CPU)."""
    torch = _torch()
    try:
        try:
            return torch.load(str(path), map_location="cpu", weights_only=True)
        except TypeError:
            # torch < 1.13 (the paper profile) has no weights_only.
            return torch.load(str(path), map_location="cpu")
    except Exception as e:
        # MMF checkpoints may pickle more than tensors and containers; they are the user's own.
        try:
            return torch.load(str(path), map_location="cpu", weights_only=False)
        except Exception:
            raise PekitError(f"{path}: cannot load checkpoint: {e}") from None


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
    """The run's manifest entry, when the checkpoint sits in a pekit run folder."""
    for folder in (checkpoint.parent, checkpoint.parent.parent):
        path = folder / "manifest.json"
        if path.is_file():
            try:
                with open(path, encoding="utf-8") as f:
                    return json.load(f).get("run")
            except (OSError, ValueError):
                return None
    return None


def export(source, out_dir=None, base=None, heads=HEADS):
    """Write adapters.pth and adapters.json for the PE checkpoint `source`; returns the manifest."""
    torch = _torch()
    checkpoint = _resolve_checkpoint(source)
    raw = load_checkpoint(checkpoint)
    state = state_dict_of(raw, checkpoint)
    trained = [n for n in state if is_trained(n, heads)]
    if not any(ADAPTER.search(n) for n in trained):
        raise PekitError(
            f"{checkpoint}: no adapter parameters (names with 'Adapt'); is this a PE run?"
        )
    frozen = [n for n in state if n not in set(trained)]
    if out_dir is None:
        # Beside the run's manifest (RUN/adapters), else beside the checkpoint.
        run_dir = checkpoint.parent.parent if checkpoint.parent.name == "mmf" else checkpoint.parent
        out_dir = run_dir / "adapters"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    weights = {n: state[n].detach().cpu().clone() for n in trained}
    torch.save({"format": FORMAT, "model": weights}, buffer)
    write_bytes(out_dir / WEIGHTS, buffer.getvalue())
    manifest = {
        "format": FORMAT,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "run": _run_info(checkpoint),
        "source_checkpoint": {"path": str(checkpoint), "sha256": sha256_file(checkpoint)},
        "weights": {
            "file": WEIGHTS,
            "sha256": sha256_file(out_dir / WEIGHTS),
            "bytes": (out_dir / WEIGHTS).stat().st_size,
        },
        "parameters": sum(int(weights[n].numel()) for n in trained),
        "tensors": len(trained),
        "adapter_parameters": sum(int(weights[n].numel()) for n in trained if ADAPTER.search(n)),
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
    write_json(out_dir / MANIFEST, manifest)
    manifest["dir"] = str(out_dir)
    return manifest


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
    adapters = Path(adapters)
    folder = adapters if adapters.is_dir() else adapters.parent
    try:
        with open(folder / MANIFEST, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        raise PekitError(f"{folder / MANIFEST}: cannot read adapter manifest: {e}") from None
    if manifest.get("format") != FORMAT:
        raise PekitError(
            f"{folder / MANIFEST}: field 'format' is {manifest.get('format')!r}, "
            f"expected {FORMAT!r}"
        )
    weights_path = folder / manifest["weights"]["file"]
    if sha256_file(weights_path) != manifest["weights"]["sha256"]:
        raise PekitError(f"{weights_path}: sha256 differs from {folder / MANIFEST}")
    weights = load_state_dict(weights_path)
    return manifest, weights


def combine(manifest, weights, base_state):
    """The full state dict: `base_state`'s frozen tensors plus the exported ones, checked."""
    frozen = [n for n in base_state if n not in set(manifest["keys"])]
    missing = len(frozen) != manifest["base"]["tensors"]
    if missing or tensors_digest(base_state, frozen) != manifest["base"]["digest"]:
        raise PekitError(
            f"the base holds {len(frozen)} frozen tensors with a different digest than the "
            f"adapters were trained on ({manifest['base']['tensors']} tensors, digest "
            f"{manifest['base']['digest'][:12]}); use the same base checkpoint"
        )
    full = dict(base_state)
    full.update(weights)
    return full


def load(adapters, base, out):
    """Write an MMF checkpoint `out` = `base` + adapters; returns its path."""
    torch = _torch()
    manifest, weights = read_export(adapters)
    base_state = load_state_dict(base)
    full = combine(manifest, weights, base_state)
    buffer = io.BytesIO()
    torch.save({"model": full}, buffer)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(out, buffer.getvalue())
    return out


def register(subparsers):
    p = subparsers.add_parser(
        "adapters",
        help="export or load adapter-only checkpoints of PE runs",
        description="Adapter-only checkpoints: the adapters and classifier head PE trained.",
    )
    sub = p.add_subparsers(dest="adapters_command", metavar="ACTION")
    sub.required = True
    e = sub.add_parser("export", help="write RUN's adapters and head with a manifest")
    e.add_argument("run", metavar="RUN", help="a PE run folder or an MMF checkpoint (best.ckpt)")
    e.add_argument("--out", help="output folder (default: RUN/adapters)")
    e.add_argument("--base", help="the base checkpoint to name in the manifest (sha256 recorded)")
    e.set_defaults(func=_export)
    ld = sub.add_parser("load", help="put exported adapters onto a base checkpoint")
    ld.add_argument("adapters", metavar="ADAPTERS", help="folder (or file) written by export")
    ld.add_argument("--base", required=True, help="MMF checkpoint holding the same frozen base")
    ld.add_argument("--out", required=True, help="MMF checkpoint to write (base + adapters)")
    ld.set_defaults(func=_load)


def _export(args):
    import sys

    manifest = export(args.run, out_dir=args.out, base=args.base)
    print(
        f"wrote {manifest['dir']}: {manifest['parameters']:,} parameters in "
        f"{manifest['tensors']} tensors ({manifest['weights']['bytes'] / 1e6:.1f} MB)",
        file=sys.stderr,
    )
    return 0


def _load(args):
    import sys

    out = load(args.adapters, args.base, args.out)
    print(f"wrote {out}", file=sys.stderr)
    return 0
