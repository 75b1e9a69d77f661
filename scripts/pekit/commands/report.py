"""`pekit report`."""

from __future__ import annotations

import sys

from ..core import argtypes
from ..report.options import add_report_options, write_report_from_args


def register(subparsers):
    p = subparsers.add_parser(
        "report",
        help="write results/report.md, report.json and plots from the runs",
        description="Tables I and II against the paper, test-split metrics and training curves "
        "from every finished run under RESULTS/runs.",
    )
    p.add_argument(
        "--results",
        default="results",
        type=argtypes.optional(argtypes.path, "results"),
        help="results folder (default: results)",
    )
    add_report_options(p)
    p.set_defaults(func=_main)


def _main(args):
    write_report_from_args(args, lambda text: print(text, file=sys.stderr))
    return 0
