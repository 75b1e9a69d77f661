"""`pekit gpu-check`."""

from __future__ import annotations

import time

from ..core import argtypes
from ..core.errors import UsageError
from ..workflows import gpu_check
from ..workflows.gpu_check import DEFAULT_MINUTES


def register(subparsers):
    p = subparsers.add_parser(
        "gpu-check",
        help="Table I, real mmf_runs and the bench on this machine's GPU, in minutes",
        description=gpu_check.__doc__.strip().splitlines()[0],
    )
    p.add_argument(
        "--out",
        default="results/gpu-check",
        type=argtypes.optional(argtypes.path, "results/gpu-check"),
        help="folder for the results",
    )
    p.add_argument(
        "--since",
        type=argtypes.optional(argtypes.number(0.0, above=True)),
        metavar="EPOCH",
        help="when the installation began (date +%%s): the total time and the budget count it",
    )
    p.add_argument(
        "--minutes",
        type=argtypes.optional(
            argtypes.number(0.0, argtypes.SECONDS_MAX / 60, above=True), DEFAULT_MINUTES
        ),
        default=DEFAULT_MINUTES,
        metavar="N",
        help=f"the whole check's budget, installation included (default {DEFAULT_MINUTES:g}): "
        "the parts share what is left, the training updates and the bench's counts scale "
        "with it, and what would start over budget is skipped (on a GPU)",
    )
    p.set_defaults(func=_main)


def _main(args):
    if args.since is not None and args.since > time.time() + 60:
        raise UsageError(
            f"--since {args.since:.0f}: in the future; expected `date +%s` of a moment past"
        )
    result = gpu_check.check(
        args.out,
        args.since,
        echo=lambda text: print(f"gpu-check: {text}", flush=True),
        minutes=args.minutes,
    )
    print(gpu_check.markdown(result))
    return 0 if result["ok"] else 1
