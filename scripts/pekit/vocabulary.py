"""The kit's vocabulary: the models, training modes and datasets of the paper, declared once.

Every other module takes names, labels and order from here. A mode is MMF configuration, never
an edit: `freeze_base` and the kit's `pe_adapter` switch on MMF's command line.

    fc    FC        frozen base, classifier head only      freeze_base=True,  pe_adapter=False
    pe    PE        frozen base + bottleneck adapters      freeze_base=True,  pe_adapter=True
    full  Full-FT   full fine-tuning                       freeze_base=False, pe_adapter=False
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

from .core.errors import UsageError


@dataclass(frozen=True)
class Mode:
    name: str
    label: str
    freeze_base: bool
    pe_adapter: bool


@dataclass(frozen=True)
class Model:
    name: str  # MMF's model name
    label: str  # the paper's


@dataclass(frozen=True)
class Dataset:
    name: str  # the kit's (facts/datasets.json holds the rest: MMF's name, splits, ...)
    label: str  # the paper's


# In the order the paper's tables use.
MODELS: Dict[str, Model] = {
    m.name: m for m in (Model("visual_bert", "VisualBERT"), Model("vilbert", "ViLBERT"))
}
MODES: Dict[str, Mode] = {
    m.name: m
    for m in (
        Mode("fc", "FC", freeze_base=True, pe_adapter=False),
        Mode("pe", "PE", freeze_base=True, pe_adapter=True),
        Mode("full", "Full-FT", freeze_base=False, pe_adapter=False),
    )
}
DATASETS: Dict[str, Dataset] = {d.name: d for d in (Dataset("hmd", "HMD"), Dataset("mmh", "MMH"))}
DEFAULT_MODELS: Tuple[str, ...] = ("visual_bert",)


def check(kind, name):
    """`name`, if it is a known model, mode or dataset (`kind`); a UsageError otherwise."""
    known = {"model": MODELS, "mode": MODES, "dataset": DATASETS}[kind]
    if name not in known:
        raise UsageError(f"unknown {kind} '{name}' (expected one of {', '.join(known)})")
    return name


def label(name):
    """The paper's label of a model, mode or dataset name (the name itself if unknown)."""
    for table in (MODELS, MODES, DATASETS):
        if name in table:
            return table[name].label
    return name


def mode_overrides(model, mode):
    """MMF `key=value` overrides that put `model` in training `mode`."""
    m = MODES[check("mode", mode)]
    prefix = f"model_config.{check('model', model)}"
    return [f"{prefix}.freeze_base={m.freeze_base}", f"{prefix}.pe_adapter={m.pe_adapter}"]
