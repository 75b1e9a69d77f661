"""The runner's command line for a test's folder, and where its runs are written there."""

from __future__ import annotations

import json

from pekit.run import record


def args(tmp_path, *extra, dataset="hmd", modes="fc"):
    return [
        "--dataset",
        dataset,
        "--modes",
        modes,
        "--results",
        str(tmp_path / "results"),
        "--data-dir",
        str(tmp_path / "data"),
        *extra,
    ]


def run_dir(tmp_path, mode="fc", dataset="hmd", seed=1):
    return tmp_path / "results" / "runs" / dataset / "visual_bert" / mode / f"seed{seed}"


def run_record(tmp_path, **kw):
    return json.loads((run_dir(tmp_path, **kw) / record.RECORD).read_text())
