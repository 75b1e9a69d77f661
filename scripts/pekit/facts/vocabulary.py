"""The kit's vocabulary: the models, training modes and datasets of the paper, declared once.

Every other module takes names, labels and order from here. A mode is MMF configuration, never
an edit: `freeze_base` and the kit's `pe_adapter`, `lora` and `bitfit` switches on MMF's command
line (the `pe` patch set declares them, off).

    fc      FC        frozen base, classifier head only         freeze_base=True,  pe_adapter=False
    pe      PE        frozen base + bottleneck adapters         freeze_base=True,  pe_adapter=True
    full    Full-FT   full fine-tuning                          freeze_base=False, pe_adapter=False
    lora    LoRA      frozen base + low-rank query/value update freeze_base=True,  lora=True
    bitfit  BitFit    frozen base, encoder bias terms trained   freeze_base=True,  bitfit=True

The paper's modes are the first three. PE and LoRA have a size, swept as run variants: PE's
bottleneck reduction (`pe_reduction`, default 10) and LoRA's rank (`lora_r`, default 8). A run at
the default size is named after its mode (`pe`, `lora`); at another size `pe-red20`, `lora-r4`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from ..core.errors import UsageError
from .datasets import dataset_facts

# The names, for code that means one model, mode or dataset in particular (the importer of HMD,
# the PE/FC ratio of a benchmark); anything that holds for each of them is a field below.
VISUAL_BERT, VILBERT = "visual_bert", "vilbert"
FC, PE, FULL, LORA, BITFIT = "fc", "pe", "full", "lora", "bitfit"
HMD, MMH = "hmd", "mmh"

# The boolean keys of MMF's model_config that put a model in a mode (the kit's `pe` patch set
# declares all but freeze_base, off). Every run states the first two, as the paper's did; the
# others are stated when a mode turns them on.
SWITCHES: Tuple[str, ...] = ("freeze_base", "pe_adapter", "lora", "bitfit")
ALWAYS_STATED: Tuple[str, ...] = ("freeze_base", "pe_adapter")


@dataclass(frozen=True)
class Mode:
    name: str
    label: str
    freeze_base: bool
    switch: Optional[str] = None  # the one of SWITCHES besides freeze_base it turns on
    # What it trains besides the classifier head (everything, when the base is not frozen): a
    # pattern of parameter names, and in words.
    trains: Optional[str] = None
    trains_words: str = ""
    adds: str = ""  # what it adds to the model, in words, when what it trains is new ("": none)
    size_key: Optional[str] = None  # the config key of the mode's size: pe_reduction, lora_r
    default_size: Optional[int] = None
    size_tag: str = ""  # in a variant's name: pe-red20, lora-r4
    size_label: str = ""  # in a variant's label: PE (reduction 20), LoRA (rank 4)

    @property
    def pe_adapter(self):
        return self.switch == "pe_adapter"

    @property
    def switches(self):
        """{switch: on} over SWITCHES: the model_config a run in this mode has."""
        return {k: self.freeze_base if k == "freeze_base" else k == self.switch for k in SWITCHES}

    def trains_parameter(self, name):
        """Whether the mode trains parameter `name` beyond the head (never, without a pattern)."""
        return bool(self.trains and re.search(self.trains, name))


@dataclass(frozen=True)
class Model:
    name: str  # MMF's model name
    label: str  # the paper's
    # The widths of the layers PE's adapters and LoRA's updates sit on, in MMF's model defaults
    # (mmf/configs/models/<name>/defaults.yaml): BERT-base's hidden_size 768 for VisualBERT;
    # ViLBERT's text stream (hidden_size 768) and visual stream (v_hidden_size 1024).
    widths: Tuple[int, ...] = (768,)
    # MMF builds it from BertConfig when bert_model_name is None (VisualBERT); ViLBERT always
    # loads through from_pretrained, so an offline build points it at a folder of random weights.
    builds_without_weights: bool = False
    # Its MMF project config has a transformer_bbox processor (ViLBERT's box coordinates).
    bbox_processor: bool = False


@dataclass(frozen=True)
class Dataset:
    """A dataset of the paper: its label here, the rest read from facts/datasets.json."""

    name: str  # the kit's
    label: str  # the paper's

    @property
    def facts(self):
        return dataset_facts(self.name)

    @property
    def mmf_name(self):
        """MMF's name of the dataset: its datasets= value, its folder under MMF's data dir."""
        return self.facts["mmf_dataset"]

    def mmf_config(self, model):
        """The MMF project config training `model` on it, as datasets.json names it (relative
        to MMF's package root, or to the kit's plugin when configs_in_plugin)."""
        return self.facts["mmf_configs"][model]

    def mmf_defaults_config(self, model):
        """The project config mmf_config extends, without its from_* checkpoint download: the
        defaults.yaml beside it (offline worlds train from random weights)."""
        return self.mmf_config(model).rpartition("/")[0] + "/defaults.yaml"

    @property
    def configs_in_plugin(self):
        """Its MMF configs (and builder) are the kit's plugin's, not MMF's own."""
        return self.facts["mmf_configs_in"] == "plugin"

    @property
    def splits(self):
        return tuple(self.facts["splits"])

    @property
    def test_splits(self):
        return tuple(self.facts["test_splits"])

    @property
    def unlabelled_splits(self):
        """The splits whose annotations may carry no labels (nothing to score on them)."""
        return tuple(self.facts.get("unlabelled_ok", ()))

    @property
    def test_annotations_per_split(self):
        """A test run names the split's annotation file (MMF's config names one test split)."""
        return bool(self.facts.get("test_annotations_per_split"))

    @property
    def val_split(self):
        """The split a run validates on: the paper's where it differs from MMF's default (HMD's
        dev_seen), else MMF's default (run/command.py's dataset_overrides picks the same)."""
        return self.facts.get("paper_val_split") or self.facts["mmf_default_val_split"]

    @property
    def submission_layout(self):
        """Its test predictions are also written in its challenge's submission layout
        (id,proba,label: the Hateful Memes challenge's)."""
        return bool(self.facts.get("submission_layout"))

    @property
    def features_from_kit(self):
        """Its region features are extracted by `pekit features` (not downloaded assets)."""
        return bool(self.facts.get("features_from_kit"))

    @property
    def features_format(self):
        """How its region features are stored for the paper's settings: lmdb (HMD's, MMF's
        zoo) or npy (MMH's, one file per image)."""
        return self.facts["features_format"]

    @property
    def features_cached(self):
        """Its region features stay in memory over a run (HMD's, about 7 GB, after the first of
        some 40 epochs); MMH's (about 120 GB) come from disk."""
        return bool(self.facts["features_cached"])

    @property
    def data_source(self):
        """What `pekit data <name>` reads (its SRC), as a fix names it: ZIP_OR_FOLDER."""
        return self.facts["data_source"]


# In the order the paper's tables use.
MODELS: Dict[str, Model] = {
    m.name: m
    for m in (
        Model(VISUAL_BERT, "VisualBERT", widths=(768,), builds_without_weights=True),
        Model(VILBERT, "ViLBERT", widths=(768, 1024), bbox_processor=True),
    )
}
MODES: Dict[str, Mode] = {
    m.name: m
    for m in (
        Mode(
            FC,
            "FC",
            freeze_base=True,
            trains_words="the head (names with a 'classifier' component)",
        ),
        Mode(
            PE,
            "PE",
            freeze_base=True,
            switch="pe_adapter",
            trains=r"(?i)(^|\.)adapt",
            trains_words="the head and adapter blocks (a name component starting 'Adapt')",
            adds="adapter blocks (names with a component starting 'Adapt')",
            size_key="pe_reduction",
            default_size=10,
            size_tag="red",
            size_label="reduction",
        ),
        Mode(
            LORA,
            "LoRA",
            freeze_base=True,
            switch="lora",
            trains=r"\.lora\.",
            trains_words="the head and LoRA updates ('.lora.' names)",
            adds="LoRA updates (names with '.lora.')",
            size_key="lora_r",
            default_size=8,
            size_tag="r",
            size_label="rank",
        ),
        Mode(
            BITFIT,
            "BitFit",
            freeze_base=True,
            switch="bitfit",
            trains=r"(^|\.)bert\.encoder\..*\.bias$",
            trains_words="the head and the encoder's bias terms (bert.encoder.*.bias)",
        ),
        Mode(FULL, "Full-FT", freeze_base=False),
    )
}
PAPER_MODES: Tuple[str, ...] = (FC, PE, FULL)
DATASETS: Dict[str, Dataset] = {d.name: d for d in (Dataset(HMD, "HMD"), Dataset(MMH, "MMH"))}
PAPER_MODEL = VISUAL_BERT  # the model of the paper's runs and of the kit's one-model checks
DEFAULT_MODELS: Tuple[str, ...] = (PAPER_MODEL,)


def check(kind, name):
    """`name`, if it is a known model, mode or dataset (`kind`); a UsageError otherwise."""
    known = {"model": MODELS, "mode": MODES, "dataset": DATASETS}[kind]
    if name not in known:
        raise UsageError(f"unknown {kind} '{name}' (expected one of {', '.join(known)})")
    return name


def label(name):
    """The label of a model, mode, variant or dataset name (the name itself if unknown)."""
    for table in (MODELS, MODES, DATASETS):
        if name in table:
            return table[name].label
    try:
        mode, size = parse_variant(name)
    except UsageError:
        return name
    return f"{MODES[mode].label} ({MODES[mode].size_label} {size})"


def sized_label(name):
    """A variant's label with its size even at the default, where sizes are compared:
    PE (reduction 10), LoRA (rank 8); other modes' plain labels."""
    try:
        mode, size = parse_variant(name)
    except UsageError:
        return name
    m = MODES[mode]
    return f"{m.label} ({m.size_label} {mode_size(mode, size)})" if m.size_key else m.label


def size_limit(mode):
    """The largest size of `mode` that means what it says for every model, and why.

    PE (the `pe` patch of transformers' modeling_bert.py and MMF's vilbert.py): each adapter is
    Linear(h, int(h / pe_reduction)) then back to h, on every stream's hidden size h; a reduction
    above h leaves a bottleneck of 0 units, an adapter that adapts nothing. LoRA (the same
    patch's LoRAUpdate): A is (r, in) and B is (out, r) on the query and value projections,
    which are h x h; the update's rank is at most min(in, out, r), so a rank above h adds
    parameters, never rank. Both limits are the narrowest width of every model's streams: one
    variant name (pe-red20, lora-r4) means the same size for every model.
    """
    m = MODES[check("mode", mode)]
    if m.size_key is None:
        return None, ""
    width = min(w for model in MODELS.values() for w in model.widths)
    if mode == PE:
        why = f"a reduction above the hidden size {width} leaves an adapter of 0 units"
    else:
        why = f"a rank above the layers' width {width} adds no rank"
    return width, why


def check_size(mode, size):
    """`size` for `mode` (None: the mode's default), as an int; None when it is the default."""
    m = MODES[check("mode", mode)]
    if size is None or size == m.default_size:
        return None
    if m.size_key is None:
        raise UsageError(f"mode '{mode}' has no size to set (only pe and lora have one)")
    most, why = size_limit(mode)
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= most:
        raise UsageError(
            f"{m.label} {m.size_label} {size!r}: expected a whole number from 1 to {most} ({why})"
        )
    return size


def variant(mode, size=None):
    """The run name of `mode` at `size`: the mode's name at its default size, else pe-red20."""
    size = check_size(mode, size)
    return mode if size is None else f"{mode}-{MODES[mode].size_tag}{size}"


def parse_variant(name):
    """(mode, size) of a variant name; size None at the mode's default."""
    if name in MODES:
        return name, None
    for mode in MODES.values():
        if mode.size_tag:
            m = re.fullmatch(rf"{re.escape(mode.name)}-{re.escape(mode.size_tag)}([0-9]+)", name)
            if m and int(m.group(1)) >= 1 and int(m.group(1)) != mode.default_size:
                return mode.name, int(m.group(1))
    raise UsageError(f"unknown mode or variant '{name}' (e.g. {', '.join(MODES)}, pe-red20)")


def variant_order(name):
    """A sort key putting variants in the modes' order, sizes ascending; unknown names last."""
    try:
        mode, size = parse_variant(name)
    except UsageError:
        return (len(MODES), 0, name)
    return (list(MODES).index(mode), mode_size(mode, size) or 0, name)


def mode_size(mode, size=None):
    """The size a variant trains at: `size`, or the mode's default (None for modes without)."""
    return MODES[mode].default_size if size is None else size


def mode_overrides(model, mode, size=None):
    """MMF `key=value` overrides that put `model` in training `mode` (at `size`, when not the
    default). The paper's modes give the same two keys they always have."""
    m = MODES[check("mode", mode)]
    size = check_size(mode, size)
    prefix = f"model_config.{check('model', model)}"
    out = [f"{prefix}.{k}={on}" for k, on in m.switches.items() if on or k in ALWAYS_STATED]
    if size is not None:
        out.append(f"{prefix}.{m.size_key}={size}")
    return out
