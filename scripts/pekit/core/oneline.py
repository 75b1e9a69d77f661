"""A command's outcome as its exit code, every error said in one line.

Errors are PekitError exceptions, printed as one line; so are the file system's, encodings',
archives' and JSON's. Exit codes: 0 done, 1 refused, 2 usage, 3 a bug of the kit, 130
interrupted, 141 the output's reader went away. `pekit` calls every command through `call`, and
so does a command that runs another one (the demo's runs), which is why it lives below both.
"""

import contextlib
import json
import os
import sys
import zipfile
import zlib

from .errors import PekitError


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


def call(command, func, args):
    """`func(args)`'s exit code; an error of `pekit COMMAND` printed as one line on stderr."""
    try:
        try:
            return func(args)
        finally:
            sys.stdout.flush()
    except PekitError as e:
        print(f"pekit {command}: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"pekit {command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`pekit patch status | head -1`): stop quietly, as cat does.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except INPUT_ERRORS as e:
        if os.environ.get("PEKIT_DEBUG"):
            raise
        print(f"pekit {command}: {describe(e)}", file=sys.stderr)
        return 1
    except Exception as e:
        if os.environ.get("PEKIT_DEBUG"):
            raise
        print(
            f"pekit {command}: unexpected error, a bug of the kit ({describe(e)}); "
            "PEKIT_DEBUG=1 shows where",
            file=sys.stderr,
        )
        return 3
