"""`pekit study`."""

from __future__ import annotations

import sys

from ..report.options import add_report_options
from ..run.options import add_matrix_arguments, dry_run_checks
from ..workflows import reproduce, study


def register(subparsers):
    p = subparsers.add_parser(
        "study",
        help="FC, PE (several sizes), LoRA (several ranks), BitFit, Full-FT; then the report",
        description=study.__doc__.strip().splitlines()[0],
    )
    add_matrix_arguments(p, default_modes=study.STUDY_MODES, default_sizes=study.STUDY_SIZES)
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the matrix and its GPU time, and check what the runs need; start nothing",
    )
    add_report_options(p)
    p.set_defaults(func=_main)


def _main(args):
    specs = reproduce.matrix(args)  # the report's options too, dry run or not
    if args.dry_run:
        print(study.matrix_table(specs))
        return dry_run_checks(specs, args)
    return reproduce.run_then_report(
        specs, args, lambda text: print(text, file=sys.stderr, flush=True)
    )
