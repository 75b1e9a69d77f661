"""The report: every table and curve as data (report.json), as Markdown (report.md), and the
plots, from the runs under <results>/runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..core import ownership
from ..core.atomic import output_file, write_json, write_text
from ..core.errors import PekitError
from ..run import mmf_log as logs
from .evidence import evidence
from .markdown import render_markdown
from .plots import plot_files, plot_specs, render_plots
from .study_section import render_study_plots, study_files, study_rows
from .tables import DEFAULT_TOLERANCE, collect_runs, paper_reference, table1, table2, test_table


def build_report(
    results, tolerance=DEFAULT_TOLERANCE, paper_logs=None, plots=True, before_drawing=None
):
    """Everything the report shows, as data (plots are drawn when `plots`; first
    `before_drawing(names)` is given the names of the PNGs about to be drawn)."""
    runs, excluded = collect_runs(results)
    # Before anything is drawn: a malformed predictions file refuses the report.
    found = evidence(runs)
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
        "evidence": found,
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
        if before_drawing is not None:
            before_drawing(plot_files(specs) + study_files(study))
        report["plots"] = render_plots(specs, Path(results) / "plots")
        report["study_plots"] = render_study_plots(study, Path(results) / "plots")
    return report


PLOTS_RECORD = ".pekit-plots.json"  # in the plots folder: the PNGs the report drew there


def _plot_names(path, key_lists):
    """The file names a record lists under each of `key_lists` (entries are names, or objects
    with a "file"); [] when it is not a record the kit wrote."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeError, RecursionError):
        return []
    names = []
    for key in key_lists:
        entries = doc.get(key) if isinstance(doc, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            file = entry.get("file") if isinstance(entry, dict) else entry
            if isinstance(file, str):
                names.append(Path(file).name)
    return names


def claim_plots(folder, names, report_json):
    """Before the report draws `names` into `folder`: refuse (one line, nothing drawn) a file
    at one of those names that no earlier report drew (its record in the folder, or an
    earlier report.json, lists the ones it did); then record `names` as the report's."""
    folder = Path(folder)
    recorded = set(_plot_names(folder / PLOTS_RECORD, ["files"]))
    earlier = recorded | set(_plot_names(report_json, ["plots", "study_plots"]))
    for name in names:
        path = folder / name
        if os.path.lexists(str(path)) and (name not in earlier or not path.is_file()):
            raise ownership.refuse(
                path,
                f"not a plot an earlier report drew (its {PLOTS_RECORD} does not list it)",
                "write the report of another --results",
            )
    if names and not set(names) <= recorded:
        folder.mkdir(parents=True, exist_ok=True)
        write_json(
            folder / PLOTS_RECORD,
            {
                "about": "pekit report: the plots it drew here, which a later report replaces",
                "files": sorted(recorded | set(names)),
            },
        )


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
    report = build_report(
        results,
        tolerance=tolerance,
        paper_logs=paper_logs,
        before_drawing=lambda names: claim_plots(plots, names, js),
    )
    write_text(md, render_markdown(report))
    write_json(js, report)
    drawn = report["plots"] + report["study_plots"]
    return [md, js] + [Path(p["file"]) for p in drawn], report
