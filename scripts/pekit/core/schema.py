"""Checked reading of what the kit reads from disk: one refusal line naming the file, the field
and what was expected.

Every reader of a file (a run record, an asset record, a wheelhouse record, a node's freeze, a
facts file, an installed package's metadata) takes the parsed document apart through a `Fields`
of its file: each value is checked for its type, its range and, where readers rely on it, its
agreement with other fields before anything uses it. A value that fails is refused with

    <file>: field '<path>' is <value>; expected <what><hint>

(a PekitError: exit 1, one line). Values are shown short and flat (a long text cut, a list or
object by its size), so that a hostile document cannot make the message itself long, nested or
multi-line.
"""

import datetime
import math
import re

from .errors import PekitError

# Sizes of what the kit writes and reads: larger is not a file of the kit's.
SHOWN = 60
NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
# What an int of the kit's files may hold: a count, a size in bytes, a seed, a process id.
INT64 = 2**63 - 1

_TYPE = {
    dict: "an object",
    list: "a list",
    str: "a string",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    type(None): "null",
}


def kind(value):
    """'an object', 'a list', 'a string', 'a number', 'a boolean' or 'null': the JSON type."""
    return _TYPE.get(type(value), type(value).__name__)


def shown(value, limit=SHOWN):
    """`value` as a refusal shows it: one short line, whatever the value (never recursing)."""
    if isinstance(value, dict):
        return f"an object of {len(value)} field{'s' * (len(value) != 1)}"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} item{'s' * (len(value) != 1)}"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return (
            f"a number of {len(str(abs(value))) if value.bit_length() < 10000 else 'many'} digits"
        )
    if isinstance(value, str) and len(value) > 4 * limit:
        value = value[: 2 * limit]  # repr of a long text stays short
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def key(name):
    """A key of a document as a field's path shows it: itself when it is a plain name, else
    short and quoted."""
    return name if isinstance(name, str) and NAME.match(name) else shown(name, 24)


class Fields:
    """The checks of one file's fields; each refusal names `where` (the file) and ends with
    `hint` (what to do about it)."""

    def __init__(self, where, hint=""):
        self.where = str(where)
        self.hint = hint

    def refuse(self, field, value, expected):
        raise PekitError(
            f"{self.where}: field {field!r} is {shown(value)}; expected {expected}{self.hint}"
        )

    # --- containers ---------------------------------------------------------------------

    def obj(self, value, field, optional=False):
        """`value`, an object (None when `optional` and null or absent)."""
        if value is None and optional:
            return None
        if not isinstance(value, dict):
            self.refuse(field, value, "an object")
        return value

    def array(self, value, field, optional=False, limit=None):
        if value is None and optional:
            return None
        if not isinstance(value, list):
            self.refuse(field, value, "a list")
        if limit is not None and len(value) > limit:
            self.refuse(field, value, f"a list of at most {limit} items")
        return value

    def strings(self, value, field, optional=False, limit=None, pattern=None, what="a string"):
        """A list of strings (each one `pattern`'s when given, `what` saying what it is)."""
        items = self.array(value, field, optional, limit)
        if items is not None:
            for i, item in enumerate(items):
                self.string(item, f"{field}[{i}]", pattern=pattern, what=what)
        return items

    # --- scalars ------------------------------------------------------------------------

    def string(
        self,
        value,
        field,
        optional=False,
        pattern=None,
        choices=None,
        empty=True,
        limit=100_000,
        what="a string",
    ):
        """A string: one of `choices`, or matching `pattern` (a regex object), non-empty unless
        `empty`, at most `limit` characters."""
        if value is None and optional:
            return None
        if choices is not None:
            if not isinstance(value, str) or value not in choices:
                self.refuse(field, value, "one of " + ", ".join(map(str, choices)))
            return value
        if (
            not isinstance(value, str)
            or (not empty and not value)
            or len(value) > limit
            or (pattern is not None and not pattern.match(value))
        ):
            self.refuse(field, value, what)
        return value

    def name(self, value, field, optional=False, what="a name (letters, digits, _ . + -)"):
        return self.string(value, field, optional, pattern=NAME, what=what)

    def integer(self, value, field, optional=False, low=-INT64, high=INT64):
        """A whole number (not a boolean, not 1.0) from `low` to `high`."""
        if value is None and optional:
            return None
        if type(value) is not int or not low <= value <= high:
            self.refuse(field, value, _range("a whole number", low, high))
        return value

    def number(self, value, field, optional=False, low=None, high=None):
        """A finite number (not a boolean) from `low` to `high`."""
        if value is None and optional:
            return None
        ok = type(value) in (int, float)
        if ok and type(value) is float:
            ok = math.isfinite(value)
        if ok and type(value) is int:
            ok = value.bit_length() <= 1000  # compared with floats below: must convert
        if ok and ((low is not None and value < low) or (high is not None and value > high)):
            ok = False
        if not ok:
            self.refuse(field, value, _range("a finite number", low, high))
        return value

    def boolean(self, value, field, optional=False):
        if value is None and optional:
            return None
        if not isinstance(value, bool):
            self.refuse(field, value, "true or false")
        return value

    def time(self, value, field, optional=False):
        """An ISO 8601 date and time with its UTC offset (as the kit writes them)."""
        if value is None and optional:
            return None
        parsed = None
        if isinstance(value, str) and len(value) <= 64:
            try:
                parsed = datetime.datetime.fromisoformat(value)
            except ValueError:
                parsed = None
        if parsed is None or parsed.utcoffset() is None:
            self.refuse(
                field, value, "a date and time with its UTC offset, like 2025-01-31T12:00:00+00:00"
            )
        return value

    def sha256(self, value, field, optional=False):
        return self.string(value, field, optional, pattern=SHA256, what="a sha256 (64 hex digits)")


def _range(what, low, high):
    low = None if low is None or low <= -INT64 else low
    high = None if high is None or high >= INT64 else high
    if low is not None and high is not None:
        return f"{what} from {low} to {high}"
    if low is not None:
        return f"{what} of {low} or more"
    if high is not None:
        return f"{what} of {high} or less"
    return what
