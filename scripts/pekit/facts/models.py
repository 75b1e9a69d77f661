"""The paper's models built through MMF's own machinery, in a mode (pekit.facts.vocabulary), and
their parameter counts; the paper's reference numbers.

`pe_adapter` exists only with the kit's `pe` patches applied to transformers and MMF. MMF is
imported inside functions, so this module loads without it.
"""

from __future__ import annotations

from pathlib import Path

from ..core import jsonfile
from ..core.errors import PekitError
from . import vocabulary
from .pins import FACTS_DIR
from .vocabulary import DATASETS, HMD, MODELS, mode_overrides

PAPER_REFERENCE_FILE = FACTS_DIR / "paper_reference.json"


def random_init_weights_dir(folder):
    """A local stand-in for bert-base-uncased: its config and an empty state dict.

    ViLBERT always loads through `from_pretrained`; pointing it here gives bert-base-uncased shapes
    with every weight randomly initialised, and nothing is downloaded.
    """
    import torch
    from transformers import BertConfig

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # transformers' BertConfig defaults are bert-base-uncased's.
    BertConfig().to_json_file(str(folder / "config.json"))
    torch.save({}, str(folder / "pytorch_model.bin"))
    return folder


def offline_overrides(model, workdir):
    """Overrides for `model` with random weights, MMF folders under `workdir`, no network."""
    vocabulary.check("model", model)
    workdir = Path(workdir)
    opts = [
        f"env.cache_dir={workdir / 'cache'}",
        f"env.data_dir={workdir / 'data'}",
        f"env.save_dir={workdir / 'save'}",
    ]
    if MODELS[model].builds_without_weights:
        # MMF parses override values with literal_eval: None (not null) is Python's None, which
        # makes VisualBERT build from BertConfig instead of loading weights.
        opts.append(f"model_config.{model}.bert_model_name=None")
    else:
        weights = random_init_weights_dir(workdir / "bert-base-uncased-random")
        opts.append(f"model_config.{model}.bert_model_name={weights}")
    return opts


def mmf_configuration(model, mode, workdir, extra_opts=(), config=None, size=None):
    """MMF's Configuration for `model` in `mode` (at `size`: PE's reduction, LoRA's rank) on
    hateful_memes, offline, as mmf_run builds it."""
    import argparse

    from mmf.utils.configuration import Configuration
    from mmf.utils.env import setup_imports

    vocabulary.check("model", model)
    setup_imports()
    hmd = DATASETS[HMD]  # MMF's own project configs, relative to MMF's package root
    opts = [
        f"config={config or hmd.mmf_config(model)}",
        f"model={model}",
        f"datasets={hmd.mmf_name}",
    ]
    opts += offline_overrides(model, workdir)
    opts += mode_overrides(model, mode, size)
    opts += list(extra_opts)
    args = argparse.Namespace(config_override=None, opts=opts)
    return Configuration(args)


def build_mmf_model(model, mode, workdir, extra_opts=(), config=None, size=None):
    """Build `model` in `mode` (at `size`) the way MMF's trainer does (build_model on its
    model_config)."""
    from mmf.utils.build import build_model
    from omegaconf import open_dict

    check_pe_patches()
    configuration = mmf_configuration(model, mode, workdir, extra_opts, config, size)
    mmf_config = configuration.get_config()
    attributes = mmf_config.model_config[model]
    with open_dict(attributes):
        attributes.model = model
    return build_model(attributes)


def parameter_counts(mmf_model):
    """(total, trained) exactly as MMF's print_model_parameters reports them."""
    from mmf.utils.general import print_model_parameters

    total, trained = print_model_parameters(mmf_model, return_only=True)
    return int(total), int(trained)


def adapter_parameter_count(hidden, reduction):
    """Parameters of one adapter block: Linear(h, b) + Linear(b, h), b = int(h / reduction)."""
    bottleneck = int(hidden / reduction)
    return 2 * hidden * bottleneck + bottleneck + hidden


def load_paper_reference(path=PAPER_REFERENCE_FILE):
    return jsonfile.load(Path(path), "the paper's reference numbers")


def table1_rows(path=PAPER_REFERENCE_FILE):
    """Table I rows: dicts with model, label, mode, total, trained."""
    reference = load_paper_reference(path)
    try:
        rows = reference["table1"]["rows"]
    except (KeyError, TypeError) as e:
        raise PekitError(f"{path}: field 'table1.rows' missing; expected a list of rows") from e
    for i, row in enumerate(rows):
        for key in ("model", "mode", "total", "trained"):
            if key not in row:
                raise PekitError(f"{path}: table1.rows[{i}] lacks field '{key}'")
    return rows


def check_pe_patches():
    """Raise unless the importable transformers and MMF carry the kit's `pe` patches.

    Without them MMF rejects the mode overrides (unknown key pe_adapter) with a less clear error.
    """
    import mmf
    import transformers.models.bert.modeling_bert as modeling_bert

    if not hasattr(modeling_bert, "LoRALinear"):
        raise PekitError(
            f"{modeling_bert.__file__}: transformers lacks this kit's 'pe' patch "
            "(no LoRALinear); apply it with `pekit prepare` (or `pekit patch apply`)"
        )
    defaults = Path(mmf.__file__).parent / "configs" / "models" / "visual_bert" / "defaults.yaml"
    if "bitfit" not in defaults.read_text(encoding="utf-8"):
        raise PekitError(
            f"{defaults}: MMF lacks this kit's 'pe' patch (no bitfit key); "
            "apply it with `pekit prepare` (or `pekit patch apply`)"
        )
