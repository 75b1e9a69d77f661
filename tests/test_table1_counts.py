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

from pekit import models, vocabulary

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

    def _build(model, mode):
        built.append(models.build_mmf_model(model, mode, tmp_path / f"{model}-{mode}"))
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
