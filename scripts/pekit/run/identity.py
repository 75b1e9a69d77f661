"""A run's identity: everything that changes what a run trains, recorded in run.json.

A run folder is reused (skipped when finished, resumed otherwise) only for the identity it was
started with; any difference is refused before anything runs, naming it (`--force` deletes the
folder and trains again; another --results folder keeps both). What does not change what is
trained is left out: the data folder, the machine's loader workers, the compat patches (they
only make the pinned code run on newer Python and torch).
"""

from __future__ import annotations

import hashlib
import json

from ..facts import pins
from ..facts import settings as settings_mod
from ..facts.vocabulary import DATASETS
from . import devices

# The patch sets that change what is trained: the paper's adapters and the `fast` switches.
TRAINING_PATCH_SETS = ("pe", "fast")
# What the paper trained with; a run with any other value is reported, not judged.
PAPER_TRAINING = {
    "settings": settings_mod.PAPER.name,
    "batch_size": settings_mod.PAPER.batch_size,
    "precision": "fp32",
    "overrides": [],
}


def _digest(value):
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def patch_digests():
    """{patch set: sha256 over its files' patched contents}, for the sets that change training."""
    from ..setup.patching import manifest

    entries = manifest.load().entries  # checked entry by entry
    out = {}
    for name in TRAINING_PATCH_SETS:
        files = sorted((e.target, e.path, e.sha256_after) for e in entries if e.set == name)
        out[name] = _digest(files)
    return out


def precision(settings):
    """fp32, bf16 or fp16: the arithmetic the run trains in, "auto" decided for this machine."""
    if settings.precision is None and not settings.fp16:
        return "fp32"
    resolved = settings_mod.resolve(settings)
    return "bf16" if resolved.get("bf16") else "fp16" if resolved.get("fp16") else "fp32"


def pretrained(spec):
    """The pre-trained weights a run starts from: the zoo key its MMF config resumes, with the
    published sha256 of that checkpoint (a checkpoint.resume_zoo or resume_file override wins);
    an explicit --config names its own."""
    from .. import assets

    for item in reversed(spec.extra):
        key, _, value = item.partition("=")
        if key.strip() in ("checkpoint.resume_zoo", "checkpoint.resume_file"):
            return {key.strip(): value}
    if spec.config:
        return {}  # the config's own choice; the config is part of the identity
    facts = assets.load_facts()
    for asset in facts.assets:
        if asset.needed_by(spec.dataset, spec.model) and asset.marker_version:
            return {"resume_zoo": asset.name, "sha256": [f.sha256 for f in asset.files]}
    return {}


def identity(spec):
    """What the run trains with, as run.json records it."""
    return {
        "settings": spec.settings.name,
        "settings_values": spec.settings.to_dict(),
        "batch_size": spec.batch,
        "gpus": spec.gpus,
        # Only where they depart from one node's GPUs, so that older records still match.
        **({"nodes": spec.nodes} if spec.nodes > 1 else {}),
        **({"device": "cpu"} if devices.distributed_cpu() else {}),
        "precision": precision(spec.settings),
        "overrides": list(spec.extra),
        "config": str(spec.config)
        if spec.config
        else DATASETS[spec.dataset].mmf_config(spec.model),
        "pretrained": pretrained(spec),
        "mmf_commit": pins.get("mmf.commit"),
        "patches": patch_digests(),
    }


def recorded(record):
    """The identity a run record holds; a record written before identities were kept gives
    what its spec recorded (settings, batch, GPUs), and only that is compared."""
    if isinstance(record.identity, dict):
        return record.identity
    run = record.run
    return {k: run[k] for k in ("settings", "batch_size", "gpus") if k in run}


def differences(have, want):
    """'field: recorded -> asked' for each field both name and that differs."""
    out = []
    for key in want:
        if key in have and have[key] != want[key]:
            out.append(f"{key} {_short(have[key])} -> {_short(want[key])}")
    return out


def _short(value):
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


def reuse_differences(spec, record):
    """What `record`'s folder trained otherwise than `spec` asks ([] when it may be reused)."""
    return differences(recorded(record), identity(spec))


def paper_training(identity_):
    """Whether a recorded identity is the paper's training (None: not recorded, older kit)."""
    if not identity_:
        return None
    for key, value in PAPER_TRAINING.items():
        if key in identity_ and identity_[key] != value:
            return False
    return identity_.get("settings") == settings_mod.PAPER.name


def label(identity_):
    """A short name of what a run trained with: its settings, then whatever departs from them
    (another batch, several GPUs, mixed precision, overrides)."""
    if not identity_:
        return "unknown"
    name = identity_.get("settings", "unknown")
    parts = [name]
    declared = (identity_.get("settings_values") or {}).get("batch_size")
    if declared is None and name == settings_mod.PAPER.name:
        declared = PAPER_TRAINING["batch_size"]
    batch = identity_.get("batch_size")
    if batch is not None and declared is not None and batch != declared:
        parts.append(f"batch {batch}")
    processes = (identity_.get("gpus") or 1) * (identity_.get("nodes") or 1)
    if processes > 1:
        unit = "CPU processes" if identity_.get("device") == "cpu" else "GPUs"
        nodes = f" on {identity_['nodes']} nodes" if (identity_.get("nodes") or 1) > 1 else ""
        parts.append(f"{processes} {unit}{nodes}")
    if identity_.get("precision") not in (None, "fp32"):
        parts.append(identity_["precision"])
    if identity_.get("overrides"):
        parts.append(f"{len(identity_['overrides'])} overrides")
    return ", ".join(parts)
