"""`pekit doctor`."""

from __future__ import annotations

from ..core import argtypes, location
from ..facts import pins
from ..facts.vocabulary import DATASETS, DEFAULT_MODELS, MODELS
from ..workflows import doctor
from ..workflows.doctor import FAIL


def register(subparsers):
    p = subparsers.add_parser(
        "doctor",
        help="what this environment has for the kit, what is missing, and the fix for each",
        description=argtypes.summary(doctor.__doc__),
    )
    p.add_argument(
        "--data-dir",
        metavar="DIR",
        type=argtypes.optional(argtypes.path),
        help="MMF's data dir (default: $MMF_DATA_DIR, else MMF's)",
    )
    p.add_argument(
        "--datasets",
        default="",
        help=f"the datasets whose training to check (default: {','.join(DATASETS)})",
    )
    p.add_argument(
        "--models",
        default="",
        help=f"the models whose training to check (default: {','.join(DEFAULT_MODELS)})",
    )
    p.add_argument(
        "--gpus",
        default=1,
        type=argtypes.positive_int,
        help="check the GPUs and world size of a run on this many GPUs per node (default: 1)",
    )
    p.add_argument(
        "--nodes",
        default=1,
        type=argtypes.positive_int,
        help="... on this many SLURM nodes (default: 1)",
    )
    p.set_defaults(func=_main)


def _main(args):
    datasets = argtypes.names(args.datasets, DATASETS, list(DATASETS), "--datasets")
    models = argtypes.names(args.models, MODELS, DEFAULT_MODELS, "--models")
    findings = doctor.diagnose(args.data_dir, datasets, models, args.gpus, args.nodes)
    width = max(len(f.what) for f in findings)
    print(
        f"pekit doctor: kit {location.kit_root()}, MMF pin {pins.get('mmf.commit')[:7]}, "
        f"transformers {pins.get('transformers.version')}"
    )
    for f in findings:
        print(f"  {f.status:4}  {f.what:<{width}}  {f.detail}")
        if f.fix:
            print(f"  {'':4}  {'':<{width}}  -> {f.fix}")
    failed = [f for f in findings if f.status == FAIL]
    print(
        f"{len(failed)} problem{'s' if len(failed) != 1 else ''} to fix"
        if failed
        else "ready to train"
    )
    return 1 if failed else 0
