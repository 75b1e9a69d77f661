"""`pekit wheelhouse`."""

from __future__ import annotations

import sys

from ..core import argtypes
from ..setup import wheelhouse
from ..setup.node import NodeFreeze


def register(subparsers):
    p = subparsers.add_parser(
        "wheelhouse",
        help="every wheel the kit needs, for installing on a node without network",
        description=wheelhouse.__doc__.strip().splitlines()[0],
    )
    p.add_argument(
        "out", metavar="DIR", type=argtypes.path, help="the folder to fill (made if needed)"
    )
    p.add_argument(
        "--node",
        metavar="FILE",
        type=argtypes.optional(argtypes.path),
        help="the node's freeze: `python3 scripts/pekit/setup/node.py freeze > FILE` on the node (or a"
        " plain `pip freeze`, with --python); without it: a node with torch and nothing else",
    )
    p.add_argument(
        "--python",
        choices=wheelhouse.pythons(),
        help=f"the node's Python (default: the freeze's, else {wheelhouse.pythons()[-1]})",
    )
    p.add_argument(
        "--with-tests",
        action="store_true",
        help="also the test tools (pytest, ruff, ...)",
    )
    p.add_argument(
        "--glibc",
        type=argtypes.optional(argtypes.glibc),
        help="the node's glibc, MAJOR.MINOR from 2.5 to 2.99 (default: the freeze's, else 2.28)",
    )
    p.add_argument("--list", action="store_true", help="print what would go in, download nothing")
    p.set_defaults(func=_main)


def _main(args):
    node = NodeFreeze.read(args.node, args.python) if args.node else None
    if args.list:
        made = wheelhouse.plan(node, args.with_tests)
        for line in made.wanted:
            print(line)
        for line, why in made.left_out.items():
            print(f"# left out: {line}  ({why})")
        for name, what in made.shadows.items():
            print(f"# shadows: {name}: {what}")
        for line in made.warnings:
            print(f"# warning: {line}")
        return 0
    record = wheelhouse.build(
        args.out,
        node,
        args.python,
        args.with_tests,
        args.glibc,
        echo=lambda text: print(text, file=sys.stderr),
    )
    print(
        f"wrote {args.out}: {len(record['files'])} wheels, {record['bytes'] / 1e6:.1f} MB "
        f"for Python {record['python']} ({len(record['left_out'])} packages left out, "
        f"{len(record['shadows'])} of the node's shadowed)"
    )
    return 0
