"""`pekit status`."""

from __future__ import annotations

import sys
from pathlib import Path

from ..core import argtypes, jsonfile
from ..run import status
from ..run.status import line


def register(subparsers):
    p = subparsers.add_parser(
        "status",
        help="show each run's state and training progress",
        description="One line per run folder under RESULTS/runs: its state (new, running, "
        "finished, failed, interrupted), the update it reached, its best validation AUROC, the "
        "time a running one has left, and its wall time.",
    )
    p.add_argument(
        "--results",
        default="results",
        type=argtypes.optional(argtypes.path, "results"),
        help="results folder (default: results)",
    )
    p.add_argument("--json", action="store_true", help="print the same as a JSON list")
    p.set_defaults(func=_main)


def _main(args):
    rows = status.status(args.results)
    if args.json:
        print(jsonfile.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no runs under {Path(args.results) / 'runs'}", file=sys.stderr)
        return 0
    width = max(len(r["key"]) for r in rows)
    for row in rows:
        print(line(row, width))
    return 0
