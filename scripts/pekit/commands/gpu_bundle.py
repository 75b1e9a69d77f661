"""`pekit gpu-bundle`."""

from __future__ import annotations

import sys

from ..core import argtypes
from ..setup import gpu_bundle


def register(subparsers):
    p = subparsers.add_parser(
        "gpu-bundle",
        help="one copy (kit, wheelhouse, MMF, run.sh) that runs the GPU check on an offline node",
        description=argtypes.summary(gpu_bundle.__doc__),
    )
    p.add_argument(
        "out",
        metavar="DIR",
        type=argtypes.path,
        help="the bundle's folder (made; an earlier one replaced)",
    )
    p.add_argument(
        "--node",
        required=True,
        metavar="FILE",
        type=argtypes.path,
        help="the node's freeze: `python3 scripts/pekit/setup/node.py freeze > FILE` on the node",
    )
    p.add_argument(
        "--mmf-from",
        metavar="URL|PATH",
        type=argtypes.optional(argtypes.location),
        help="a clone or bundle of MMF, when the kit's cache has no checkout",
    )
    p.add_argument(
        "--wheelhouse",
        metavar="DIR",
        type=argtypes.optional(argtypes.path),
        help="a wheelhouse already made for this node (default: made now; needs network)",
    )
    p.set_defaults(func=_main)


def _main(args):
    result = gpu_bundle.build(
        args.out,
        args.node,
        args.mmf_from,
        args.wheelhouse,
        echo=lambda text: print(text, file=sys.stderr, flush=True),
    )
    sizes = ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in result["bytes"].items())
    print(f"wrote {args.out}: {result['total_bytes'] / 1e6:.1f} MB ({sizes})")
    for name, what in result["shadows"].items():
        print(f"  shadows {name}: {what}")
    for line in result["warnings"]:
        print(f"  warning: {line}")
    print(f"on the node: bash {args.out}/run.sh   (NODE_PYTHON=... MINUTES=... as needed)")
    return 0
