"""The report's options, shared by `pekit report`, `pekit reproduce` and `pekit study`."""

from __future__ import annotations

from argparse import ArgumentTypeError
from pathlib import Path

from ..core import argtypes
from ..core.errors import PekitError, UsageError
from ..facts.vocabulary import DATASETS, PAPER_MODES
from .build import write_report
from .tables import DEFAULT_TOLERANCE


def parse_paper_log_args(items):
    """['hmd:fc=path', ...] -> {('hmd', 'fc'): 'path'}: the paper trained its three modes only,
    each (dataset, mode) once."""
    out = {}
    for item in items or []:
        key, sep, path = item.partition("=")
        dataset, colon, mode = key.partition(":")
        if not (sep and colon and path) or dataset not in DATASETS or mode not in PAPER_MODES:
            raise UsageError(
                f"--paper-log: expected DATASET:MODE=LOG with DATASET in {', '.join(DATASETS)} "
                f"and MODE in {', '.join(PAPER_MODES)}, got {argtypes.shown(item)}"
            )
        try:
            argtypes.path(path)
        except ArgumentTypeError as e:
            raise UsageError(f"--paper-log: {e}") from None
        if (dataset, mode) in out:
            raise UsageError(f"--paper-log: {dataset}:{mode} given twice (each once)")
        if not Path(path).is_file():
            raise PekitError(f"--paper-log {path}: no such file")
        out[(dataset, mode)] = path
    return out


def add_report_options(parser):
    """The report's options, shared by `pekit report` and `pekit reproduce`."""
    parser.add_argument(
        "--tolerance",
        type=argtypes.optional(argtypes.number(0.0, 1.0), DEFAULT_TOLERANCE),
        default=DEFAULT_TOLERANCE,
        help=f"AUROC pass/fail tolerance, 0 to 1 (default: {DEFAULT_TOLERANCE})",
    )
    parser.add_argument(
        "--paper-log",
        action="append",
        default=[],
        metavar="DATASET:MODE=LOG",
        help="the paper's MMF log for a run, drawn dashed in the plots (repeatable)",
    )


def write_report_from_args(args, echo):
    """Write the report with the options in `args`, telling `echo` what was written and which
    runs were left out for being of no dataset, model or mode the kit knows."""
    paths, report = write_report(args.results, args.tolerance, parse_paper_log_args(args.paper_log))
    for r in report["excluded"]:
        if str(r["status"]).startswith("unknown "):
            echo(f"warning: {r['dir']}: left out of the report: {r['status']}")
    for path in paths:
        echo(f"wrote {path}")
    return paths
