"""The `pekit` command: a thin layer over the stage modules.

Each stage module exposes `register(subparsers)`, adding its sub-command with
`set_defaults(func=...)`; `func(args)` returns an exit code. Errors are PekitError
exceptions, printed here as one line; so are the file system's, encodings', archives' and
JSON's. Exit codes: 0 done, 1 refused, 2 usage, 3 a bug of the kit, 130 interrupted, 141 the
output's reader went away.
"""

import argparse
import contextlib
import importlib
import json
import os
import sys
import zipfile
import zlib

from .core.errors import PekitError

# Stage modules, in pipeline order (pin -> patch -> data -> run -> report).
COMMAND_MODULES = [
    "pekit.environment",
    "pekit.doctor",
    "pekit.wheelhouse",
    "pekit.gpu_bundle",
    "pekit.patching.cli",
    "pekit.mmf_source.cli",
    "pekit.data.cli",
    "pekit.features.cli",
    "pekit.assets.cli",
    "pekit.run.cli",
    "pekit.run.status",
    "pekit.study",
    "pekit.report.cli",
    "pekit.adapters.cli",
    "pekit.demo",
    "pekit.bench",
    "pekit.gpu_check",
]


class _Parser(argparse.ArgumentParser):
    """argparse's parser with its usage errors on one line (exit 2), like every other error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def version_line():
    """`pekit <version>`, and the kit's git revision when it runs from a checkout (with "modified"
    when tracked files differ from it)."""
    from . import __version__
    from .core import gitinfo, pins

    line = f"pekit {__version__}"
    if (pins.REPO_ROOT / ".git").exists():
        rev = gitinfo.revision(pins.REPO_ROOT)
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
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def describe(error):
    """One line for an error of the file system, of encoding, of an archive or of JSON: what
    and where, without Python's traceback."""
    if isinstance(error, OSError):
        what = error.strerror or str(error)
        if error.filename is not None:
            where = os.fsdecode(error.filename)
            if getattr(error, "filename2", None) is not None:
                where += f" -> {os.fsdecode(error.filename2)}"
            return f"{where}: {what}"
        return what
    if isinstance(error, UnicodeError):
        return f"text that is not valid {getattr(error, 'encoding', 'UTF-8')}: {error}"
    if isinstance(error, json.JSONDecodeError):
        return f"malformed JSON at line {error.lineno} column {error.colno}: {error.msg}"
    return f"{error.__class__.__name__}: {error}"


# Errors a user's input or machine causes, reported as one line (exit 1). Anything else is a
# bug of the kit: one line too, with PEKIT_DEBUG=1 for the traceback.
INPUT_ERRORS = (OSError, UnicodeError, ValueError, zipfile.BadZipFile, zlib.error, EOFError)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        try:
            return args.func(args)
        finally:
            sys.stdout.flush()
    except PekitError as e:
        print(f"pekit {args.command}: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"pekit {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`pekit patch status | head -1`): stop quietly, as cat does.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except INPUT_ERRORS as e:
        if os.environ.get("PEKIT_DEBUG"):
            raise
        print(f"pekit {args.command}: {describe(e)}", file=sys.stderr)
        return 1
    except Exception as e:
        if os.environ.get("PEKIT_DEBUG"):
            raise
        print(
            f"pekit {args.command}: unexpected error, a bug of the kit ({describe(e)}); "
            "PEKIT_DEBUG=1 shows where",
            file=sys.stderr,
        )
        return 3


if __name__ == "__main__":
    sys.exit(main())
