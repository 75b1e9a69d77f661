"""Table I of the paper: total and trained parameters of every model in every mode.

Each row is built through MMF itself (Configuration from the hateful_memes project config,
build_model, print_model_parameters), full size, randomly initialised and offline. The
expected numbers are read from the kit's paper reference facts.
"""

from __future__ import annotations

import gc
import logging
import sys

import pytest

from pekit.facts import models, vocabulary

REFERENCE = models.load_paper_reference()["table1"]
ROWS = models.table1_rows()


@pytest.fixture(scope="module", autouse=True)
def restore_transformers():
    """ViLBERT swaps transformers' BERT forwards for MMF's scriptable ones, process-wide."""
    yield
    hf_layers = sys.modules.get("mmf.modules.hf_layers")
    if hf_layers is not None:
        hf_layers.undo_replace_with_jit()


@pytest.fixture
def build(mmf_installed, tmp_path):
    built = []

    def _build(model, mode, size=None):
        built.append(models.build_mmf_model(model, mode, tmp_path / f"{model}-{mode}", size=size))
        return built[-1]

    yield _build
    built.clear()
    gc.collect()  # ViLBERT is ~1 GB of float32 weights; free it before the next row


@pytest.mark.mmf
@pytest.mark.slow
@pytest.mark.parametrize("row", ROWS, ids=[f"{r['model']}-{r['mode']}" for r in ROWS])
def test_table1_row(build, row, caplog):
    model = build(row["model"], row["mode"])
    from mmf.utils.general import print_model_parameters

    # Attached to MMF's logger itself: MMF may stop its loggers propagating to the root.
    logger = logging.getLogger("mmf.utils.general")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="mmf.utils.general"):
            total, trained = print_model_parameters(model)
    finally:
        logger.removeHandler(caplog.handler)
    assert (total, trained) == (row["total"], row["trained"])
    # MMF's own log line, as a training run prints it.
    assert f"Total Parameters: {row['total']}. Trained Parameters: {row['trained']}" in caplog.text

    names = [n for n, _ in model.named_parameters()]
    adapters = [n for n in names if "Adapt" in n]
    if row["mode"] != "pe":
        assert adapters == []
        return
    # PE trains exactly the adapters and the classifier head.
    trained_names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert set(adapters) <= trained_names
    assert all(n.startswith("model.classifier.") for n in trained_names - set(adapters))
    adapter_total = sum(p.numel() for n, p in model.named_parameters() if "Adapt" in n)
    assert adapter_total == REFERENCE["adapters_only"][row["model"]]
    if row["model"] == "vilbert":
        # Text (12) and visual (6) stream layers carry adapters; co-attention layers none.
        layers = {n.split(".output.")[0] for n in adapters}
        assert len([x for x in layers if ".encoder.layer." in x]) == 12
        assert len([x for x in layers if ".encoder.v_layer." in x]) == 6
        assert not any(".c_layer." in n for n in adapters)


# ---- beyond the paper: LoRA and BitFit, counted by formula ----------------------------------
# The encoders' shapes (bert-base; ViLBERT's visual stream and co-attention from MMF's
# defaults.yaml): hidden H, intermediate I, and the layers of each stream.
TEXT = {"H": 768, "I": 3072, "layers": 12}
VISUAL = {"H": 1024, "I": 1024, "layers": 6}  # ViLBERT's v_hidden_size, v_intermediate_size
BI_HIDDEN, COATTENTION_LAYERS = 1024, 6  # ViLBERT's bi_hidden_size, its connection layers


def lora_count(model, r):
    """A (r x H) and B (H x r) on the query and value of every stream layer's self-attention."""
    streams = [TEXT] + ([VISUAL] if model == "vilbert" else [])
    return sum(s["layers"] * 2 * (r * s["H"] + s["H"] * r) for s in streams)


def bitfit_count(model):
    """Every bias of the encoder: per BERT layer q, k, v (3H), attention output and its
    LayerNorm (2H), intermediate (I), output and its LayerNorm (2H)."""

    def layer(s):
        return 3 * s["H"] + 2 * s["H"] + s["I"] + 2 * s["H"]

    total = TEXT["layers"] * layer(TEXT)
    if model == "vilbert":
        t, v = TEXT["H"], VISUAL["H"]
        coattention = (
            6 * BI_HIDDEN  # biattention: query/key/value of each stream
            + 3 * v  # biOutput: dense1, LayerNorm1, q_dense1 (to the visual stream)
            + 3 * t  # biOutput: dense2, LayerNorm2, q_dense2 (to the text stream)
            + VISUAL["I"]
            + 2 * v  # v_intermediate, v_output and its LayerNorm
            + TEXT["I"]
            + 2 * t  # t_intermediate, t_output and its LayerNorm
        )
        total += VISUAL["layers"] * layer(VISUAL) + COATTENTION_LAYERS * coattention
    return total


EXTENDED = [
    (model, mode, size)
    for model in vocabulary.MODELS
    for mode, size in (("lora", None), ("lora", 4), ("bitfit", None), ("pe", 20))
]


@pytest.mark.mmf
@pytest.mark.slow
@pytest.mark.parametrize(
    "model_name,mode,size",
    EXTENDED,
    ids=[f"{m}-{vocabulary.variant(x, s)}" for m, x, s in EXTENDED],
)
def test_lora_and_bitfit_rows(build, model_name, mode, size):
    rows = {(r["model"], r["mode"]): r for r in ROWS}
    fc, full = rows[(model_name, "fc")], rows[(model_name, "full")]
    model = build(model_name, mode, size)
    total, trained = models.parameter_counts(model)
    r = vocabulary.mode_size(mode, size)
    if mode == "pe":  # the paper's blocks at another reduction
        blocks = REFERENCE["adapter_blocks"][model_name]["blocks"]
        added = sum(b["count"] * models.adapter_parameter_count(b["hidden"], r) for b in blocks)
        assert (total, trained) == (full["total"] + added, fc["trained"] + added)
        return
    added = lora_count(model_name, r) if mode == "lora" else 0
    extra = added if mode == "lora" else bitfit_count(model_name)
    assert (total, trained) == (full["total"] + added, fc["trained"] + extra)
    trained_names = {n for n, p in model.named_parameters() if p.requires_grad}
    head = {n for n in trained_names if n.startswith("model.classifier.")}
    rest = trained_names - head
    if mode == "lora":
        assert rest and all(".lora." in n for n in rest)
        assert not any(".c_layer." in n for n in rest)  # none in ViLBERT's co-attention
    else:
        assert rest and all(n.startswith("model.bert.encoder.") for n in rest)
        assert all(n.endswith(".bias") for n in rest)
    assert not any("Adapt" in n for n, _ in model.named_parameters())


def test_reference_adapter_counts_follow_the_block_sizes():
    for model, spec in REFERENCE["adapter_blocks"].items():
        expected = sum(
            b["count"] * models.adapter_parameter_count(b["hidden"], b["reduction"])
            for b in spec["blocks"]
        )
        assert expected == REFERENCE["adapters_only"][model]
    rows = {(r["model"], r["mode"]): r for r in ROWS}
    for model in vocabulary.MODELS:
        added = rows[(model, "pe")]["total"] - rows[(model, "fc")]["total"]
        assert added == REFERENCE["adapters_only"][model]
        assert rows[(model, "full")]["trained"] == rows[(model, "full")]["total"]


def test_mode_overrides_define_the_modes():
    assert vocabulary.mode_overrides("vilbert", "pe") == [
        "model_config.vilbert.freeze_base=True",
        "model_config.vilbert.pe_adapter=True",
    ]
    assert vocabulary.mode_overrides("visual_bert", "fc") == [
        "model_config.visual_bert.freeze_base=True",
        "model_config.visual_bert.pe_adapter=False",
    ]
    assert vocabulary.mode_overrides("visual_bert", "full") == [
        "model_config.visual_bert.freeze_base=False",
        "model_config.visual_bert.pe_adapter=False",
    ]
    assert vocabulary.mode_overrides("visual_bert", "lora", 4)[2:] == [
        "model_config.visual_bert.lora=True",
        "model_config.visual_bert.lora_r=4",
    ]
    assert vocabulary.mode_overrides("vilbert", "pe", 20)[2:] == [
        "model_config.vilbert.pe_reduction=20"
    ]
    # At its default size a mode's overrides are the plain mode's.
    assert vocabulary.mode_overrides("vilbert", "pe", 10) == vocabulary.mode_overrides(
        "vilbert", "pe"
    )
    assert vocabulary.mode_overrides("vilbert", "bitfit")[2:] == [
        "model_config.vilbert.bitfit=True"
    ]
