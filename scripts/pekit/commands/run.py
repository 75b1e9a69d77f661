"""`pekit run`."""

from __future__ import annotations

from ..run import command
from ..run.options import add_matrix_arguments, dry_run_checks, run_specs, specs_from_args
from ..run.record import FAILED, INTERRUPTED, state


def register(subparsers):
    p = subparsers.add_parser(
        "run",
        help="train (and test) experiment runs with MMF",
        description="Train each (model, mode, seed) on a dataset with mmf_run, then score the best "
        "checkpoint on the test splits and have MMF write its per-example predictions on the "
        "validation and test splits (RUN/predictions/). Finished runs are skipped; interrupted "
        "or failed ones resume from their last checkpoint.",
    )
    add_matrix_arguments(p)
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the mmf_run command lines and check what the runs need; start nothing",
    )
    p.set_defaults(func=_main)


def _main(args):
    specs = specs_from_args(args)
    if args.dry_run:
        for spec in specs:
            print(command.quoted(command.train(spec, resume=state(spec) in (FAILED, INTERRUPTED))))
        return dry_run_checks(specs, args)
    return run_specs(specs, args)
