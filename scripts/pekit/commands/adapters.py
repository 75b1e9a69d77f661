"""`pekit adapters export|load`."""

from __future__ import annotations

import sys

from ..adapters.checkpoint import export, load


def register(subparsers):
    p = subparsers.add_parser(
        "adapters",
        help="export or load adapter-only checkpoints of PE, LoRA and BitFit runs",
        description="Adapter-only checkpoints: what a frozen-base mode trained (adapters, LoRA updates, bias terms) and the classifier head.",
    )
    sub = p.add_subparsers(dest="adapters_command", metavar="ACTION")
    sub.required = True
    e = sub.add_parser("export", help="write RUN's adapters and head, with adapters.json")
    e.add_argument(
        "run",
        metavar="RUN",
        help="a PE, LoRA or BitFit run folder, or an MMF checkpoint (best.ckpt)",
    )
    e.add_argument("--out", help="output folder (default: RUN/adapters)")
    e.add_argument("--base", help="the base checkpoint to name in adapters.json (sha256 recorded)")
    e.set_defaults(func=_export)
    ld = sub.add_parser("load", help="put exported adapters onto a base checkpoint")
    ld.add_argument("adapters", metavar="ADAPTERS", help="folder (or file) written by export")
    ld.add_argument("--base", required=True, help="MMF checkpoint holding the same frozen base")
    ld.add_argument("--out", required=True, help="MMF checkpoint to write (base + adapters)")
    ld.set_defaults(func=_load)


def _export(args):
    info = export(args.run, out_dir=args.out, base=args.base)
    print(
        f"wrote {info['dir']}: {info['parameters']:,} parameters in "
        f"{info['tensors']} tensors ({info['weights']['bytes'] / 1e6:.1f} MB)",
        file=sys.stderr,
    )
    return 0


def _load(args):
    out = load(args.adapters, args.base, args.out)
    print(f"wrote {out}", file=sys.stderr)
    return 0
