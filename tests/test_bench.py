"""`pekit bench` runs and gives a well-formed result. Figures are never judged here: it is a
benchmark, and these runs are far too short (one update, batch 1) to mean anything."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers.frcnn import FRCNN_TEST_CONFIG
from pekit import cli
from pekit.bench import summary as report

SECTIONS = "loader,train,pipeline"


def bench_args(tmp_path, **kw):
    args = dict(
        models="visual_bert",
        modes="fc",
        pipeline_models="visual_bert",
        pipeline_modes=None,
        datasets="mmh",
        only=SECTIONS,
        device="cpu",
        batch=1,
        updates=1,
        pipeline_updates=2,
        warmup=0,
        loader_items=4,
        loader_batch=2,
        extract_images=2,
        extract_batch=1,
        features=None,
        frcnn_dir=None,
        data_dir=None,
        mmf_src=None,
        workdir=str(tmp_path / "work"),
        out=str(tmp_path / "out" / "bench.json"),
    )
    args.update(kw)
    return argparse.Namespace(**args)


def run_bench(args):
    """What `pekit bench ARGS` measures."""
    from pekit.bench import runner

    return runner.run(runner.plan(runner.BenchRequest.from_args(args)), args.out)


def fake_result(device="cuda"):
    """A result as run_bench returns it, with round figures."""
    pipe = []
    for dataset, paper_ups, fast_ups in (("hmd", 5.0, 12.0), ("mmh", 1.6, 11.0)):
        for settings, ups in (("paper", paper_ups), ("fast", fast_ups)):
            pipe.append(
                {
                    "model": "visual_bert",
                    "mode": "fc",
                    "dataset": dataset,
                    "settings": settings,
                    "updates_per_s": ups,
                }
            )
    train = [
        {
            "model": "visual_bert",
            "mode": mode,
            "settings": s,
            "seconds_per_update": t,
            "updates_per_s": 1 / t,
            "samples_per_s": 16 / t,
            "peak_memory_mb": 1000.0,
        }
        for mode, s, t in (
            ("fc", "fast", 0.05),
            ("pe", "fast", 0.055),
            ("fc", "paper", 0.2),
            ("pe", "paper", 0.21),
        )
    ]
    result = {
        "device": {"type": device, "name": "Test GPU", "torch": "2", "cuda": "12", "cpu_count": 8},
        "memory_kind": "max_memory_allocated",
        "params": {
            "batch_size": 16,
            "updates": 20,
            "warmup": 3,
            "seq_len": 128,
            "num_boxes": 100,
            "feature_dim": 2048,
            "scaled_down": None,
        },
        "settings": {"paper": {"note": "fp32"}, "fast": {"note": "bf16, TF32"}},
        "train": train,
        "loader": [
            {
                "format": fmt,
                "readahead": readahead,
                "num_workers": n,
                "pin_memory": n > 0,
                "page_cache": cache,
                "items": 64,
                "batch_size": 16,
                "samples_per_s": ups,
            }
            for fmt, readahead, n, cache, ups in (
                ("npy", None, 0, "cold", 40.0),
                ("npy", None, 0, "warm", 200.0),
                ("lmdb", True, 4, "cold", 400.0),
                ("lmdb", False, 4, "warm", 500.0),
            )
        ],
        "pipeline": pipe,
    }
    result["ratios"] = report.ratios(result)
    return result


def test_ratios_and_table_beside_the_paper():
    result = fake_result()
    r = result["ratios"]
    assert r["fast_over_paper_hmd"] == pytest.approx(2.4)
    assert r["fast_over_paper_mmh"] == pytest.approx(11.0 / 1.6)
    assert r["mmh_over_hmd_fast"] == pytest.approx(11.0 / 12.0)
    assert r["pe_over_fc_step_fast"] == pytest.approx(1.1)
    text = report.markdown(result)
    # the paper's V100 anchors, read from the facts, beside ours
    assert "| MMH FC | VisualBERT | 1.64 | 691 | 1.60 | 11.00 | 6.88x |" in text
    assert "| HMD FC | VisualBERT | ~5.00 | 1,039 | 5.00 | 12.00 | 2.40x |" in text
    # each row against npy without workers read from the same page-cache state
    assert "| lmdb, read-ahead | 4 | yes | cold | 400.0 | 10.00x |" in text
    assert "| lmdb | 4 | yes | warm | 500.0 | 2.50x |" in text
    assert "| fast / paper updates/s on MMH | 6.88 | >= 5.0 |" in text
    assert "(CPU)" in report.markdown(fake_result("cpu"))


def test_paper_anchors_are_facts():
    runs = report.paper_runs()
    assert sorted(runs) == [(d, m) for d in ("hmd", "mmh") for m in ("fc", "full", "pe")]
    hours = sum(r["wall_time_s"] for r in runs.values()) / 3600
    assert hours == pytest.approx(22.6, abs=0.05)  # the paper's 22.6 V100-hours


def test_bad_sections_are_usage_errors(tmp_path, capsys):
    assert cli.main(["bench", "--only", "train,nap", "--out", str(tmp_path / "b.json")]) == 2
    assert "--only" in capsys.readouterr().err


def _resident_bytes(files):
    out = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--output", "RES", *map(str, files)],
        stdout=subprocess.PIPE,
        check=True,
    ).stdout
    return sum(int(x) for x in out.split())


@pytest.mark.skipif(
    shutil.which("fincore") is None, reason="needs util-linux fincore to see the page cache"
)
def test_page_cache_state_is_set_and_the_files_left_as_they_are(tmp_path):
    from pekit.bench import loader
    from pekit.features import lmdb

    if loader.file_system(tmp_path) in loader.IN_MEMORY_FS:
        pytest.skip(f"{tmp_path} is on {loader.file_system(tmp_path)}: no disk to evict to")
    features, names = loader.write_store(tmp_path / "store", 3)
    lmdb_path = loader.write_lmdb(features)
    for fmt, path in (("npy", features), ("lmdb", lmdb_path)):
        files = loader.store_files(path, fmt, names)
        assert files and all(f.is_file() for f in files)
        before = {f: f.read_bytes() for f in files}  # reading brings them into the cache
        assert _resident_bytes(files) > 0
        assert loader.set_cache(path, fmt, names, "cold") == "cold"
        assert _resident_bytes(files) == 0
        assert loader.set_cache(path, fmt, names, "warm") == "warm"
        # the items' values are most of either store
        assert _resident_bytes(files) >= 0.9 * sum(f.stat().st_size for f in files)
        assert loader.evict(path, fmt, names) is True
        assert _resident_bytes(files) == 0
        assert {f: f.read_bytes() for f in files} == before
    assert lmdb_path == lmdb.default_lmdb_path(features)
    # npy: exactly the two files of each item read
    assert sorted(f.name for f in loader.store_files(features, "npy", names[:1])) == [
        "1.npy",
        "1_info.npy",
    ]


@pytest.mark.skipif(not Path("/proc/self/mountinfo").exists(), reason="needs Linux's mountinfo")
def test_a_store_in_memory_is_never_called_cold(tmp_path, monkeypatch):
    from pekit.bench import loader

    assert loader.file_system("/proc/self") == "proc"
    features, names = loader.write_store(tmp_path / "store", 2)
    monkeypatch.setattr(loader, "file_system", lambda path: "tmpfs")
    before = {f: f.read_bytes() for f in loader.store_files(features, "npy", names)}
    assert loader.evict(features, "npy", names) is False
    assert loader.set_cache(features, "npy", names, "cold") == "unknown (cannot evict on tmpfs)"
    assert {f: f.read_bytes() for f in loader.store_files(features, "npy", names)} == before


@pytest.mark.mmf
@pytest.mark.slow
def test_bench_runs_on_cpu(mmf_installed, tmp_path):
    from pekit.bench.options import write_outputs

    result = run_bench(bench_args(tmp_path))
    assert result["device"]["type"] == "cpu" and result["device"]["name"]
    assert result["params"]["batch_size"] == 1
    assert [(r["settings"], r["precision"]) for r in result["train"]] == [
        ("paper", "fp32"),
        ("fast", "bf16"),
    ]
    for row in result["train"]:
        assert row["updates_per_s"] > 0 and row["peak_memory_mb"] > 0 and row["finite_losses"]
    loaders = [
        (r["format"], r["readahead"], r["num_workers"], r["page_cache"]) for r in result["loader"]
    ]
    assert len(loaders) == len(set(loaders)) and len(loaders) in (6, 12)
    for features in (("npy", None), ("lmdb", False), ("lmdb", True)):
        assert {(*features, 0, "cold"), (*features, 0, "warm")} <= set(loaders)
    for row in result["loader"]:
        assert row["samples_per_s"] > 0
        # MMF's reader output, collated by MMF's BatchCollator
        assert {"image_feature_0", "image_info_0", "input_ids", "targets"} <= set(
            row["first_batch_keys"]
        )
    pipe = {(r["dataset"], r["settings"]): r for r in result["pipeline"]}
    assert sorted(pipe) == [("mmh", "fast"), ("mmh", "paper")]
    assert (
        pipe[("mmh", "paper")]["features"] == "npy" and pipe[("mmh", "fast")]["features"] == "lmdb"
    )
    assert all(r["updates_timed"] == 2 and r["page_cache"] == "cold" for r in pipe.values())
    assert (
        pipe[("mmh", "fast")]["readahead"] is True and pipe[("mmh", "paper")]["readahead"] is None
    )
    # Timing starts once the batches the workers prefetched (2 each) have been used.
    assert [pipe[("mmh", s)]["warmup"] for s in ("paper", "fast")] == [
        0,
        2 * pipe[("mmh", "fast")]["num_workers"],
    ]
    assert set(result["ratios"]) >= {"fast_over_paper_mmh", "pe_over_fc_step_fast"}
    out, md, text = write_outputs(result, tmp_path / "out" / "bench.json")
    assert json.loads(out.read_text())["kind"] == "pekit-bench"
    assert md.read_text() == text and "| MMH FC | VisualBERT | 1.64 | 691 |" in text
    assert sorted(p.name for p in out.parent.iterdir()) == ["bench.json", "bench.md"]


@pytest.mark.mmf
@pytest.mark.slow
def test_bench_extraction(mmf_installed, mmf_checkout, tmp_path):
    frcnn = tmp_path / "frcnn"
    frcnn.mkdir()
    (frcnn / "config.yaml").write_text(json.dumps(FRCNN_TEST_CONFIG))
    args = bench_args(tmp_path, only="extract", frcnn_dir=str(frcnn), mmf_src=str(mmf_checkout))
    ex = run_bench(args)["extract"]
    assert ex["weights"] == "random init" and ex["images_timed"] == 1 and ex["images_per_s"] > 0
    missing = run_bench(bench_args(tmp_path, only="extract", frcnn_dir=str(tmp_path)))["extract"]
    assert "config.yaml" in missing["skipped"]


# --- the request: what the CLI maps onto and the GPU check builds ------------------------------


def test_a_request_made_directly_is_checked_like_the_options():
    from pekit.bench.runner import BenchRequest
    from pekit.core.errors import UsageError

    for bad, option in (
        ({"models": ("visual_bert,vilbert",)}, "--models"),
        ({"modes": ("fc", "fc")}, "--modes"),
        ({"sections": ("train", "nope")}, "--only"),
        ({"datasets": ("hmd", "coco")}, "--datasets"),
        ({"counts": (("updates", 0),)}, "--updates"),
        ({"counts": (("updates", True),)}, "--updates"),
        ({"counts": (("speed", 3),)}, "speed"),
    ):
        with pytest.raises(UsageError, match=option):
            BenchRequest(**bad)
    assert BenchRequest(counts=(("warmup", 0),)).counts == (("warmup", 0),)


def test_the_options_map_onto_the_request_and_back_to_data(tmp_path):
    from pekit.bench.runner import BenchRequest, counts_for

    args = bench_args(tmp_path, models="vilbert", modes="fc,pe", only="train", updates=3)
    for name in ("batch", "pipeline_updates", "warmup", "loader_items", "loader_batch"):
        setattr(args, name, None)
    args.device = None
    request = BenchRequest.from_args(args)
    assert (request.models, request.modes, request.sections) == (
        ("vilbert",),
        ("fc", "pe"),
        ("train",),
    )

    class Cpu:
        type = "cpu"

    counts, scaled = counts_for(request, Cpu())
    assert counts["updates"] == 3 and counts["batch"] == 2 and scaled
    data = request.to_dict()
    assert data["models"] == ["vilbert"] and data["counts"]["updates"] == 3
    assert "device" not in data and "pipeline_modes" not in data  # unset fields are left out
