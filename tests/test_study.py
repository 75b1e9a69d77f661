"""`pekit study` on CPU: FC, PE at two reductions, LoRA at two ranks, BitFit and Full-FT, each a
real `mmf_run` of full-size VisualBERT for a few updates (the `smoke` settings) on the synthetic
Hateful Memes world, then the report's study table and its Pareto plot, and adapter-only export
of the LoRA and BitFit runs. Checkpoints are deleted at the end.

FC, PE and Full-FT at their default sizes are the runs `pekit demo` trains (the session's
`finished_runs`): the study runs on the demo's world with the demo's arguments, in a results
folder of its own that starts with copies of those three finished runs, so the runner's reuse
rule (same identity, finished: not rerun) leaves only the other variants to train. A folder of
its own keeps the study's runs and report out of the demo's, which test_smoke.py checks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from pekit import adapters
from pekit.facts import models
from pekit.report.study_section import pareto
from pekit.run import record
from pekit.workflows import synthetic as mmf_world

pytestmark = [pytest.mark.mmf, pytest.mark.slow]

MODEL = "visual_bert"
VARIANTS = ("fc", "pe", "pe-red20", "lora-r4", "lora", "bitfit", "full")
HANG_TIMEOUT_S = 1800


def expected_trained():
    """Trained parameters of each variant, by formula from Table I's FC and Full-FT rows."""
    rows = {r["mode"]: r for r in models.table1_rows() if r["model"] == MODEL}
    fc, full = rows["fc"]["trained"], rows["full"]["trained"]
    layers, hidden = 12, 768
    per_layer_bias = 3 * hidden + 2 * hidden + 3072 + 2 * hidden  # q,k,v; attn out+LN; ffn
    return {
        "fc": fc,
        "pe": fc + layers * models.adapter_parameter_count(hidden, 10),
        "pe-red20": fc + layers * models.adapter_parameter_count(hidden, 20),
        "lora-r4": fc + layers * 2 * 2 * hidden * 4,
        "lora": fc + layers * 2 * 2 * hidden * 8,
        "bitfit": fc + layers * per_layer_bias,
        "full": full,
    }


# The variants `pekit demo` trains with the same identity: reused, not trained again.
REUSED = ("fc", "pe", "full")


class Study:
    def __init__(self, root, runs):
        self.root = root
        self.world = runs.world
        self.results = root / "results"
        self.env = runs.env

    def argv(self, *extra):
        argv = [
            "study",
            "--dataset",
            "hmd",
            "--models",
            MODEL,
            "--pe-reductions",
            "10,20",
            "--lora-ranks",
            "4,8",
            "--settings",
            "smoke",
            "--results",
            str(self.results),
            "--data-dir",
            str(self.world.data_dir),
            "--config",
            str(mmf_world.CONFIGS[MODEL]),
            *extra,
        ]
        for item in mmf_world.runner_overrides(self.world, MODEL):
            argv += ["--override", item]
        return argv

    def pekit(self, argv):
        proc = subprocess.run(
            [sys.executable, "-m", "pekit", *argv],
            env=self.env,
            cwd=str(self.root),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=HANG_TIMEOUT_S,
        )
        return proc.returncode, proc.stdout.decode("utf-8", "replace")

    def run_dir(self, variant):
        return self.results / "runs" / "hmd" / MODEL / variant / "seed1"


@pytest.fixture(scope="module")
def study(finished_runs, tmp_path_factory):
    s = Study(tmp_path_factory.mktemp("study"), finished_runs)
    s.reused = {v: finished_runs.copy_run("hmd", v, s.results) for v in REUSED}
    s.reused_records = {v: (d / record.RECORD).read_bytes() for v, d in s.reused.items()}
    start = time.monotonic()
    s.code, s.out = s.pekit(s.argv("--no-test"))
    print(f"\nstudy of {len(VARIANTS)} runs: {time.monotonic() - start:.0f} s")
    try:
        yield s
    finally:
        for path in list(s.root.rglob("*.ckpt")) + list(s.root.rglob("*.pth")):
            path.unlink()


def test_every_variant_is_its_own_finished_run(study):
    assert study.code == 0, study.out[-6000:]
    # The demo's runs are reused as they are; every other variant is trained here.
    for variant in VARIANTS:
        key = f"hmd/{MODEL}/{variant}/seed1"
        reused = variant in REUSED
        assert (f"{key}: finished already, not rerun" in study.out) is reused, variant
        assert (f"{key}: training" in study.out) is not reused, variant
    for variant, folder in study.reused.items():
        assert (folder / record.RECORD).read_bytes() == study.reused_records[variant], variant
    runs = sorted(p.name for p in (study.results / "runs" / "hmd" / MODEL).iterdir())
    assert runs == sorted(VARIANTS)
    for variant in VARIANTS:
        m = json.loads((study.run_dir(variant) / record.RECORD).read_text())
        assert m["status"] == "finished" and m["run"]["variant"] == variant
    sizes = {
        v: json.loads((study.run_dir(v) / record.RECORD).read_text())["run"].get("size")
        for v in ("pe-red20", "lora-r4", "lora")
    }
    assert sizes == {
        "pe-red20": {"key": "pe_reduction", "value": 20},
        "lora-r4": {"key": "lora_r", "value": 4},
        "lora": {"key": "lora_r", "value": 8},
    }


def test_the_study_table_counts_what_each_variant_trains(study):
    report = json.loads((study.results / "report.json").read_text())
    (group,) = report["study"]
    assert (group["dataset"], group["model"]) == ("hmd", MODEL)
    rows = {r["variant"]: r for r in group["rows"]}
    assert list(rows) == list(VARIANTS)  # the modes' order, sizes ascending
    trained = expected_trained()
    for variant, row in rows.items():
        assert row["trained"] == trained[variant], variant
        assert row["trained_pct"] == pytest.approx(100 * row["trained"] / row["total"])
        assert row["val_auroc"]["n"] == 1 and 0 <= row["val_auroc"]["mean"] <= 1
        assert row["updates_per_s"]["mean"] > 0
    front = pareto([(r["trained"], r["val_auroc"]["mean"]) for r in group["rows"]])
    assert [r["pareto"] for r in group["rows"]] == [i in front for i in range(len(rows))]
    # The variant training fewest parameters is always on the front.
    assert rows["fc"]["pareto"]
    md = (study.results / "report.md").read_text()
    assert "## Parameter efficiency" in md and "LoRA (rank 4)" in md and "**front**" in md


def test_the_plot_draws_every_variant_and_the_front(study):
    report = json.loads((study.results / "report.json").read_text())
    (plot,) = report["study_plots"]
    assert plot["kind"] == "study" and os.path.getsize(plot["file"]) > 10_000
    with open(plot["file"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    rows = report["study"][0]["rows"]
    assert [(p["variant"], p["x"], p["y"]) for p in plot["points"]] == [
        (r["variant"], r["trained"], r["val_auroc"]["mean"]) for r in rows
    ]
    front = sorted((r["trained"], r["val_auroc"]["mean"]) for r in rows if r["pareto"])
    assert [(p["x"], p["y"]) for p in plot["front"]] == front


def test_dry_run_prints_the_matrix_and_its_gpu_time(study):
    code, out = study.pekit(study.argv("--dry-run", "--seeds", "1,2"))
    assert code == 0, out
    lines = [ln for ln in out.splitlines() if ln.startswith("| VisualBERT |")]
    assert len(lines) == len(VARIANTS) and all("| 1,2 |" in ln for ln in lines)
    assert "Estimated total:" in out and "V100 GPU-hours" in out


@pytest.mark.parametrize("variant", ["lora-r4", "bitfit"])
def test_adapter_export_of_lora_and_bitfit_loads_back_bit_for_bit(study, tmp_path, variant):
    torch = pytest.importorskip("torch")
    run = study.run_dir(variant)
    out = tmp_path / "export"
    code, text = study.pekit(["adapters", "export", str(run), "--out", str(out)])
    assert code == 0, text[-4000:]
    info = json.loads((out / adapters.INFO).read_text())
    assert info["parameters"] == expected_trained()[variant]
    mode, size = ("lora", 4) if variant == "lora-r4" else ("bitfit", None)
    model = models.build_mmf_model(MODEL, mode, tmp_path / "mmf", size=size)
    assert info["keys"] == sorted(n for n, p in model.named_parameters() if p.requires_grad)
    state = adapters.load_state_dict(run / "mmf" / "best.ckpt")
    g = torch.Generator().manual_seed(1)
    base_state = {
        n: (torch.randn(t.shape, generator=g) if n in info["keys"] else t) for n, t in state.items()
    }
    base = tmp_path / "base.ckpt"
    torch.save({"model": base_state}, str(base))
    loaded = tmp_path / "loaded.ckpt"
    code, text = study.pekit(
        ["adapters", "load", str(out), "--base", str(base), "--out", str(loaded)]
    )
    assert code == 0, text[-4000:]
    restored = adapters.load_state_dict(loaded)
    assert sorted(restored) == sorted(state)
    assert all(torch.equal(restored[n], t) for n, t in state.items())
