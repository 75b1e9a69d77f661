"""`pekit reproduce`."""

from __future__ import annotations

import sys

from ..report.options import add_report_options
from ..run.options import add_matrix_arguments
from ..workflows import reproduce


def register(subparsers):
    r = subparsers.add_parser(
        "reproduce",
        help="run a dataset's experiments, then write the report",
        description="`pekit run` for the matrix, then `pekit report` on the results folder.",
    )
    add_matrix_arguments(r)
    add_report_options(r)
    r.set_defaults(func=_main)


def _echo(text):
    print(text, file=sys.stderr, flush=True)


def _main(args):
    return reproduce.run_then_report(reproduce.matrix(args), args, _echo)
