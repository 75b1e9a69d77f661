"""`pekit run` and `pekit reproduce`: the matrix from the command line, checked before anything
runs or prints (a dry run refuses what a run refuses)."""

from __future__ import annotations

import sys

from .. import settings as settings_mod
from ..core import argtypes
from ..core.errors import UsageError
from ..data.paths import data_dir_line
from ..vocabulary import DATASETS, DEFAULT_MODELS, MODELS, MODES, PAPER_MODES
from . import command, preflight
from .execute import run_matrix, visible_devices
from .record import FAILED, FINISHED, INTERRUPTED, state
from .spec import matrix


def add_matrix_arguments(p, default_modes=PAPER_MODES, default_sizes=None):
    """The matrix's options; `default_sizes` maps pe/lora to the sizes run when none is given
    (`pekit study` sweeps them; `pekit run` runs each mode at its default)."""
    default_sizes = default_sizes or {}
    p.add_argument("--dataset", required=True, choices=list(DATASETS))
    p.add_argument("--models", default="", help="comma-separated (default: visual_bert)")
    p.add_argument(
        "--modes",
        default="",
        help=f"comma-separated, of {','.join(MODES)} (default: {','.join(default_modes)})",
    )
    p.set_defaults(default_modes=default_modes, default_sizes=default_sizes)
    p.add_argument(
        "--pe-reductions",
        default="",
        metavar="LIST",
        help="PE's bottleneck reductions, one run each "
        f"(e.g. 2,5,10,20,50; default: {default_sizes.get('pe', '10')})",
    )
    p.add_argument(
        "--lora-ranks",
        default="",
        metavar="LIST",
        help=f"LoRA's ranks, one run each (e.g. 2,4,8,16; default: {default_sizes.get('lora', '8')})",
    )
    p.add_argument("--seeds", default="", help="comma-separated integers (default: 1)")
    p.add_argument(
        "--gpus",
        default="",
        type=argtypes.optional(argtypes.positive_int),
        help="GPUs on this node, MMF's own distributed training (default: 1)",
    )
    p.add_argument(
        "--batch",
        default="",
        type=argtypes.optional(argtypes.positive_int),
        help="global batch size (default: the settings' one)",
    )
    p.add_argument(
        "--settings",
        default="",
        help=f"training settings: {', '.join(settings_mod.names())} (default: paper)",
    )
    p.add_argument("--results", default="results", help="results folder (default: results)")
    p.add_argument("--data-dir", default=None, help="MMF env.data_dir (default: MMF's own)")
    p.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra MMF override, appended last (repeatable)",
    )
    p.add_argument(
        "--config",
        default=None,
        help="MMF config instead of the paper's project config (e.g. for offline tests)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="delete and train again runs already there (finished, or trained otherwise)",
    )
    p.add_argument("--no-test", action="store_true", help="skip the test-split evaluation")


def specs_from_args(args):
    """The RunSpecs the arguments ask for, every check that can refuse done."""
    try:
        seeds = [int(s) for s in argtypes.names(args.seeds, None, ["1"], "--seeds")]
    except ValueError:
        raise UsageError(f"--seeds must be integers, got '{args.seeds}'") from None
    for item in args.override:
        if "=" not in item:
            raise UsageError(f"--override expects KEY=VALUE, got '{item}'")
    gpus = args.gpus or 1
    modes = argtypes.names(args.modes, MODES, args.default_modes, "--modes")
    sizes = {}
    for mode, option, value in (
        ("pe", "--pe-reductions", args.pe_reductions),
        ("lora", "--lora-ranks", args.lora_ranks),
    ):
        if value and mode not in modes:
            raise UsageError(f"{option} sizes {mode} runs, and --modes has no {mode}")
        sizes[mode] = argtypes.positive_ints(value or args.default_sizes.get(mode, ""), option)
    specs = matrix(
        args.results,
        args.dataset,
        argtypes.names(args.models, MODELS, DEFAULT_MODELS, "--models"),
        modes,
        seeds,
        sizes=sizes,
        settings=settings_mod.get(args.settings or "paper"),
        batch=args.batch or None,
        gpus=gpus,
        data_dir=args.data_dir,
        extra=args.override,
        config=args.config,
    )
    visible_devices(gpus)  # the GPUs are there: checked before anything runs or prints
    return specs


def register(subparsers):
    p = subparsers.add_parser(
        "run",
        help="train (and test) experiment runs with MMF",
        description="Train each (model, mode, seed) on a dataset with mmf_run, then score the best "
        "checkpoint on the test splits. Finished runs are skipped; interrupted or failed ones "
        "resume from their last checkpoint.",
    )
    add_matrix_arguments(p)
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the mmf_run command lines and check what the runs need; start nothing",
    )
    p.set_defaults(func=_main)

    from .. import report

    r = subparsers.add_parser(
        "reproduce",
        help="run a dataset's experiments, then write the report",
        description="`pekit run` for the matrix, then `pekit report` on the results folder.",
    )
    add_matrix_arguments(r)
    report.add_report_options(r)
    r.set_defaults(func=_reproduce)


def _echo(text):
    print(text, file=sys.stderr, flush=True)


def dry_run_checks(specs, args):
    """The dry run's part of the checks a run makes: each problem on stderr; 2 if any."""
    _echo(f"data: {data_dir_line(args.data_dir)}")
    problems = preflight.check(specs, force=args.force, test=not args.no_test)
    if problems:
        _echo(preflight.message(problems, verb="would start"))
    return 2 if problems else 0


def _main(args):
    specs = specs_from_args(args)
    if args.dry_run:
        for spec in specs:
            print(command.quoted(command.train(spec, resume=state(spec) in (FAILED, INTERRUPTED))))
        return dry_run_checks(specs, args)
    return run_specs(specs, args)


def run_specs(specs, args):
    statuses = run_matrix(specs, force=args.force, test=not args.no_test, echo=_echo)
    return 0 if all(s == FINISHED for s in statuses.values()) else 1


def _reproduce(args):
    from .. import report

    report.parse_paper_log_args(args.paper_log)  # the report's options, before hours of training
    code = run_specs(specs_from_args(args), args)
    report.write_report_from_args(args, _echo)
    return code
