"""`pekit prepare`."""

from __future__ import annotations

from ..core import argtypes
from ..setup import prepare


def register(subparsers):
    p = subparsers.add_parser(
        "prepare",
        help="install MMF at the pin (fetched if needed) and apply the kit's patches here",
        description=prepare.__doc__.strip().splitlines()[0],
    )
    p.add_argument(
        "--mmf-from",
        metavar="URL|PATH",
        type=argtypes.optional(argtypes.location),
        help="fetch MMF from this clone or bundle when no checkout is found",
    )
    p.add_argument(
        "--timeout",
        type=argtypes.optional(argtypes.number(0.0, argtypes.SECONDS_MAX, above=True)),
        default=None,
        metavar="SECONDS",
        help="give up fetching MMF after this long (default: no limit)",
    )
    p.set_defaults(func=_main)


def _main(args):
    prepare.prepare(args.mmf_from, args.timeout, echo=lambda text: print(text, flush=True))
    return 0
