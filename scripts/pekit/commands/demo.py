"""`pekit demo`."""

from __future__ import annotations

from ..core import argtypes
from ..workflows import demo


def register(subparsers):
    p = subparsers.add_parser(
        "demo",
        help="the whole pipeline on CPU in minutes, on synthetic data, kept in results/demo",
        description=demo.__doc__.strip().splitlines()[0],
    )
    p.add_argument(
        "--results",
        default="results/demo",
        type=argtypes.optional(argtypes.path, "results/demo"),
        help="the demo's folder (default: results/demo)",
    )
    p.set_defaults(func=_main)


def _main(args):
    return demo.demo(args.results)
