"""The report: every table and curve as data (report.json), as Markdown (report.md), and the
plots, from the runs under <results>/runs."""

from __future__ import annotations

from pathlib import Path

from ..core.atomic import output_file, write_json, write_text
from ..core.errors import PekitError
from . import logs
from .markdown import render_markdown
from .plots import plot_specs, render_plots
from .study import render_study_plots, study_rows
from .tables import DEFAULT_TOLERANCE, collect_runs, paper_reference, table1, table2, test_table


def build_report(results, tolerance=DEFAULT_TOLERANCE, paper_logs=None, plots=True):
    """Everything the report shows, as data (plots are drawn when `plots`)."""
    runs, excluded = collect_runs(results)
    reference = paper_reference()
    parsed_paper = {key: logs.parse_file(path) for key, path in (paper_logs or {}).items()}
    report = {
        "tolerance": tolerance,
        "table1": table1(runs, reference),
        "table2": table2(runs, tolerance, reference),
        "test": test_table(runs),
        "runs": [
            {
                "dataset": r["dataset"],
                "model": r["model"],
                "mode": r["mode"],
                "seed": r["seed"],
                "settings": r["settings_label"],
                "paper_training": r["paper_training"],
                "dir": r["dir"],
                "parameters": r["log"]["parameters"],
                "best": r["log"]["best"],
                "last_update": r["log"]["last_update"],
                "ups": r["log"]["ups"],
                "peak_memory_mb": r["log"]["peak_memory_mb"],
                "wall_time_s": r["log"]["wall_time_s"],
                "test": r["test"],
            }
            for r in runs
        ],
        "excluded": excluded,
        "paper_logs": {f"{d}:{m}": str(p) for (d, m), p in (paper_logs or {}).items()},
        "plots": [],
        "study_plots": [],
    }
    study = study_rows(runs)
    report["study"] = [
        {"dataset": d, "model": m, "rows": rows} for (d, m), rows in sorted(study.items())
    ]
    specs = plot_specs(runs, parsed_paper)
    report["curves"] = [
        {
            "dataset": d,
            "model": m,
            "panel": panel,
            "lines": [{k: v for k, v in ln.items() if k not in ("x", "y")} for ln in lines],
        }
        for (d, m), spec in sorted(specs.items())
        for panel, lines in spec.items()
    ]
    if plots:
        report["plots"] = render_plots(specs, Path(results) / "plots")
        report["study_plots"] = render_study_plots(study, Path(results) / "plots")
    return report


def write_report(results, tolerance=DEFAULT_TOLERANCE, paper_logs=None):
    """Write report.md and report.json into `results`; returns their paths and the report."""
    results = Path(results)
    if not (results / "runs").is_dir():
        raise PekitError(f"{results / 'runs'}: no runs here; run `pekit run` first")
    md, js, plots = results / "report.md", results / "report.json", results / "plots"
    for path in (md, js):
        output_file(path)
    if plots.exists() and not plots.is_dir():
        raise PekitError(f"{plots}: exists and is not a folder; move it away, nothing written")
    report = build_report(results, tolerance=tolerance, paper_logs=paper_logs)
    write_text(md, render_markdown(report))
    write_json(js, report)
    drawn = report["plots"] + report["study_plots"]
    return [md, js] + [Path(p["file"]) for p in drawn], report
