"""The `pekit` command: a thin layer over the stage modules.

Each module of pekit.commands exposes `register(subparsers)`, adding its sub-command with
`set_defaults(func=...)`; `func(args)` returns an exit code. Errors are PekitError
exceptions, printed as one line (core/oneline.py); so are the file system's, encodings',
archives' and JSON's. Exit codes: 0 done, 1 refused, 2 usage, 3 a bug of the kit, 130
interrupted, 141 the output's reader went away.
"""

import argparse
import sys

from .commands import (
    adapters,
    assets,
    bench,
    data,
    demo,
    doctor,
    features,
    gpu_bundle,
    gpu_check,
    logs,
    mmf,
    patch,
    predict,
    prepare,
    report,
    reproduce,
    run,
    status,
    study,
    wheelhouse,
)
from .core import oneline

# The sub-commands, in pipeline order (pin -> patch -> data -> run -> report). A command module
# imports what is heavy (torch, MMF) inside its functions: `pekit --help` loads them all.
COMMANDS = [
    prepare,
    doctor,
    wheelhouse,
    gpu_bundle,
    patch,
    mmf,
    data,
    features,
    assets,
    run,
    reproduce,
    status,
    study,
    logs,
    report,
    adapters,
    predict,
    demo,
    bench,
    gpu_check,
]


class _Parser(argparse.ArgumentParser):
    """argparse's parser with its usage errors on one line (exit 2), like every other error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def version_line():
    """`pekit <version>`, and the kit's git revision when it runs from a checkout (with "modified"
    when tracked files differ from it)."""
    from . import __version__
    from .core import gitinfo, location

    line = f"pekit {__version__}"
    if (location.kit_root() / ".git").exists():
        rev = gitinfo.revision(location.kit_root())
        if rev["git_revision"]:
            line += f" (git {rev['git_revision']}{', modified' if rev['git_dirty'] else ''})"
    return line


class _Version(argparse.Action):
    """--version: the line of version_line(), computed only when asked (it runs git)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_line())
        parser.exit(0)


def build_parser():
    parser = _Parser(prog="pekit", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--version", action=_Version, help="print the kit's version and git revision, and exit"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    return oneline.call(args.command, args.func, args)


if __name__ == "__main__":
    sys.exit(main())
