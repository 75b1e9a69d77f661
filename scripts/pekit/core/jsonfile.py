"""JSON as the standard has it: NaN and infinities are written as null and never read.

Python's json module writes `NaN` and `Infinity`, which no other JSON reader accepts, and reads
them back. The kit's JSON goes through here instead. `load` is the one reader of the kit's JSON
files: whatever a file holds (broken or hostile), it returns a document or refuses in one line
naming the file.
"""

import json
import math

from .errors import PekitError
from .regular import read_regular

# Deeper than any file the kit writes or reads (a node's freeze: 4 levels); a document nested
# deeper is refused, so that no reader, writer or message of the kit recurses without end.
MAX_DEPTH = 64
# Larger than any JSON file the kit reads (a node's freeze: a few hundred KiB).
MAX_BYTES = 64 * 1024 * 1024
# Digits of a whole number: 10**400 is read (and refused by the field's range), longer is not a
# number of any file's.
MAX_DIGITS = 1000


def finite(obj):
    """`obj` with every non-finite float replaced by None (containers copied)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def dumps(obj, **kwargs):
    return json.dumps(finite(obj), allow_nan=False, **kwargs)


def _refuse(constant):
    raise ValueError(f"{constant} is not JSON")


def _float(text):
    value = float(text)
    if not math.isfinite(value):
        shown = text if len(text) <= 24 else text[:21] + "..."
        raise ValueError(f"the number {shown} is out of range")
    return value


def _int(text):
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise ValueError(f"a number of {len(text.lstrip('-'))} digits is out of range")
    return int(text)


def check_document(doc, max_depth=MAX_DEPTH):
    """Raise ValueError unless `doc` nests at most `max_depth` levels and every string in it
    (keys too) is text that UTF-8 can write (no unpaired surrogate from a \\ud800 escape); the
    error names the field."""
    todo = [(doc, 1, ())]
    while todo:
        value, depth, path = todo.pop()
        if isinstance(value, (dict, list)):
            if depth > max_depth:
                raise ValueError(f"nested deeper than {max_depth} levels (at {_path(path)})")
            if isinstance(value, dict):
                for key, item in value.items():
                    _text(key, path)
                    todo.append((item, depth + 1, path + (key,)))
            else:
                todo.extend((item, depth + 1, path + (i,)) for i, item in enumerate(value))
        elif isinstance(value, str):
            _text(value, path)


def _path(path):
    out = ""
    for part in path[:8]:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            part = part if len(part) <= 24 and part.isprintable() else repr(part[:21]) + "..."
            out += f".{part}" if out else part
    return (out + ("..." if len(path) > 8 else "")) or "the top level"


def _text(value, path):
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(
            f"a string holds an unpaired surrogate (\\u{ord(value[e.start]):04x}) at {_path(path)}"
        ) from None


def loads(text):
    """Parse JSON text; NaN, Infinity, -Infinity, numbers beyond a float's range or of over
    MAX_DIGITS digits, nesting
    deeper than MAX_DEPTH and unpaired surrogates are refused (ValueError)."""
    try:
        doc = json.loads(text, parse_constant=_refuse, parse_float=_float, parse_int=_int)
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels") from None
    check_document(doc)
    return doc


_KINDS = {dict: "an object", list: "a list"}
_JSON_TYPE = {
    dict: "a JSON object",
    list: "a JSON list",
    str: "a JSON string",
    int: "a JSON number",
    float: "a JSON number",
    bool: "a JSON boolean",
    type(None): "JSON null",
}


def read_bytes(path, what="file", limit=MAX_BYTES):
    """The bytes of the regular file `path` (at most `limit`); one-line PekitErrors otherwise:
    a folder, a pipe or device (never waited on), a file too large, an error of the system
    (core/regular.py, the one reader of files handed over)."""
    return read_regular(path, limit, what)


def load(path, what="JSON file", kind=dict, limit=MAX_BYTES):
    """The JSON document of `path`, which must be a `kind` (dict, list, or None for any); a
    one-line PekitError naming the file otherwise, whatever the file holds."""
    data = read_bytes(path, what, limit)
    if not data.strip():
        raise PekitError(f"{path}: {what} is empty; expected a JSON document")
    try:
        doc = loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise PekitError(f"{path}: {what} is not UTF-8 (byte {e.start})") from None
    except ValueError as e:
        message = " ".join(str(e).split())
        raise PekitError(f"{path}: {what} is not valid JSON: {message[:200]}") from None
    if kind is not None and not isinstance(doc, kind):
        raise PekitError(
            f"{path}: {what} is {_JSON_TYPE[type(doc)]}; expected {_KINDS.get(kind, kind.__name__)}"
        )
    return doc


def lines(text, path, error=None):
    """(where, value) of each non-blank line of a JSON Lines `text` read from `path`, `where`
    being "path:line"; a line that is not JSON raises `error` (PekitError) naming it."""
    error = error or PekitError
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            yield where, loads(line)
        except ValueError as e:
            raise error(f"{where}: not valid JSON ({' '.join(str(e).split())[:120]})") from None
