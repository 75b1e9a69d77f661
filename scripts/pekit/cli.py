"""The `pekit` command: a thin layer over the stage modules.

Each stage module exposes `register(subparsers)`, adding its sub-command with
`set_defaults(func=...)`; `func(args)` returns an exit code. Errors are PekitError
exceptions, printed here as one line.
"""

import argparse
import importlib
import sys

from .errors import PekitError

# Stage modules, in pipeline order (pin -> patch -> data -> run -> report).
COMMAND_MODULES = [
    "pekit.patching.cli",
    "pekit.mmf_source",
    "pekit.data.cli",
    "pekit.features.cli",
    "pekit.assets",
    "pekit.run",
    "pekit.logs",
    "pekit.report",
    "pekit.adapters",
    "pekit.bench",
]


def build_parser():
    parser = argparse.ArgumentParser(prog="pekit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except PekitError as e:
        print(f"pekit {args.command}: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"pekit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
