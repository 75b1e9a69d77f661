"""The run matrix from the command line (`pekit run`, `reproduce`, `study`), checked before
anything runs or prints (a dry run refuses what a run refuses)."""

from __future__ import annotations

import re
import sys
import unicodedata

from ..core import argtypes
from ..core.errors import UsageError
from ..data.paths import data_dir_line
from ..facts import settings as settings_mod
from ..facts.vocabulary import (
    DATASETS,
    DEFAULT_MODELS,
    LORA,
    MODELS,
    MODES,
    PAPER_MODES,
    PE,
    SWITCHES,
    size_limit,
)
from . import preflight
from .devices import visible_devices
from .execute import run_matrix
from .record import FINISHED
from .spec import SEED_MAX, SEED_WHY, matrix, seed_limit


def add_matrix_arguments(p, default_modes=PAPER_MODES, default_sizes=None):
    """The matrix's options; `default_sizes` maps pe/lora to the sizes run when none is given
    (`pekit study` sweeps them; `pekit run` runs each mode at its default). The lists are parsed,
    each by core/argtypes' one rule, in specs_from_args (their checks depend on each other)."""
    default_sizes = default_sizes or {}
    pe_most, _ = size_limit(PE)
    lora_most, _ = size_limit(LORA)
    p.add_argument("--dataset", required=True, choices=list(DATASETS))
    p.add_argument(
        "--models", default="", help=f"comma-separated (default: {','.join(DEFAULT_MODELS)})"
    )
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
        help=f"PE's bottleneck reductions, 1 to {pe_most}, one run each "
        f"(e.g. 2,5,10,20,50; default: {default_sizes.get(PE, MODES[PE].default_size)})",
    )
    p.add_argument(
        "--lora-ranks",
        default="",
        metavar="LIST",
        help=f"LoRA's ranks, 1 to {lora_most}, one run each "
        f"(e.g. 2,4,8,16; default: {default_sizes.get(LORA, MODES[LORA].default_size)})",
    )
    p.add_argument(
        "--seeds",
        default="",
        help=f"comma-separated whole numbers, 1 to {SEED_MAX} (default: 1)",
    )
    p.add_argument(
        "--gpus",
        default="",
        type=argtypes.optional(argtypes.positive_int),
        help="GPUs on each node, MMF's own distributed training (default: 1)",
    )
    p.add_argument(
        "--nodes",
        default="",
        type=argtypes.optional(argtypes.positive_int),
        help="SLURM nodes, each with --gpus GPUs: MMF started by srun inside the allocation "
        "pekit runs in (default: 1)",
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
        help=f"training settings: {', '.join(settings_mod.names())} (default: {settings_mod.DEFAULT})",
    )
    p.add_argument(
        "--results",
        default="results",
        type=argtypes.optional(argtypes.path, "results"),
        help="results folder (default: results)",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        type=argtypes.optional(argtypes.path),
        help="MMF env.data_dir (default: MMF's own)",
    )
    p.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra MMF override, appended last (repeatable); not of a key the options set "
        "(training.seed, training.batch_size, distributed.world_size, the mode's keys, ...)",
    )
    p.add_argument(
        "--config",
        default=None,
        type=argtypes.optional(argtypes.path),
        help="MMF config instead of the paper's project config (e.g. for offline tests)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="delete and train again runs already there (finished, or trained otherwise)",
    )
    p.add_argument(
        "--no-test",
        action="store_true",
        help="skip the test-split evaluation and the per-example predictions",
    )


# What --override may not set: keys the runner sets from its own options (a run folder named
# seed1 must have trained with seed 1, a pe-red20 folder with reduction 20, ...).
OWN_KEYS = (
    "run_type",
    "env.save_dir",
    "env.data_dir",
    "training.seed",
    "training.batch_size",
    "distributed.world_size",
    "checkpoint.resume",
)
MODE_KEYS = SWITCHES + tuple(m.size_key for m in MODES.values() if m.size_key)
_OVERRIDE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+|\[[0-9]+\])*", re.ASCII)


def check_overrides(items):
    """The --override values: KEY=VALUE, one line each, no key twice, none the options set."""
    keys = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not _OVERRIDE_KEY.fullmatch(key):
            raise UsageError(
                f"--override: expected KEY=VALUE with KEY like training.max_updates, "
                f"got {argtypes.shown(item)}"
            )
        if any(unicodedata.category(c) == "Cc" for c in value):
            raise UsageError(f"--override: a control character in {argtypes.shown(item)}")
        parts = key.split(".")
        if key in OWN_KEYS or (
            len(parts) == 3 and parts[0] == "model_config" and parts[2] in MODE_KEYS
        ):
            raise UsageError(
                f"--override: {key} is set by the kit from its options (--seeds, --batch, "
                "--gpus, --modes, --pe-reductions, --lora-ranks, --results, --data-dir); use those"
            )
        if key in keys:
            raise UsageError(f"--override: {key} given twice (each key once)")
        keys.append(key)
    return list(items)


def specs_from_args(args):
    """The RunSpecs the arguments ask for, every check that can refuse done: the same for a
    dry run and a run (`reproduce` and `study` check the report's options first)."""
    check_overrides(args.override)
    gpus, nodes = args.gpus or 1, args.nodes or 1
    modes = argtypes.names(args.modes, MODES, args.default_modes, "--modes")
    models = argtypes.names(args.models, MODELS, DEFAULT_MODELS, "--models")
    settings = settings_mod.get(
        argtypes.name(args.settings, settings_mod.names(), settings_mod.DEFAULT, "--settings")
    )
    seeds = argtypes.whole_numbers(
        args.seeds, "--seeds", 1, seed_limit(gpus * nodes), default="1", why=SEED_WHY
    )
    sizes = {}
    for mode, option, value in (
        (PE, "--pe-reductions", args.pe_reductions),
        (LORA, "--lora-ranks", args.lora_ranks),
    ):
        if value and mode not in modes:
            raise UsageError(f"{option} sizes {mode} runs, and --modes has no {mode}")
        most, why = size_limit(mode)
        sizes[mode] = argtypes.whole_numbers(
            value, option, 1, most, default=args.default_sizes.get(mode, ""), why=f" ({why})"
        )
    specs = matrix(
        args.results,
        args.dataset,
        models,
        modes,
        seeds,
        sizes=sizes,
        settings=settings,
        batch=args.batch or None,
        gpus=gpus,
        nodes=nodes,
        data_dir=args.data_dir,
        extra=args.override,
        config=args.config,
    )
    visible_devices(gpus, nodes=nodes)  # the GPUs are there: checked before anything runs or prints
    return specs


def _echo(text):
    print(text, file=sys.stderr, flush=True)


def dry_run_checks(specs, args):
    """The dry run's part of the checks a run makes: each problem on stderr; 2 if any."""
    _echo(f"data: {data_dir_line(args.data_dir)}")
    problems = preflight.check(specs, force=args.force, test=not args.no_test)
    if problems:
        _echo(preflight.message(problems, verb="would start"))
    return 2 if problems else 0


def run_specs(specs, args):
    statuses = run_matrix(specs, force=args.force, test=not args.no_test, echo=_echo)
    return 0 if all(s == FINISHED for s in statuses.values()) else 1
