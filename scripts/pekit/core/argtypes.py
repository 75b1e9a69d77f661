"""argparse types that refuse, as usage errors (exit 2), what is not a value in range."""

import argparse
import math
import urllib.parse


def _number(text, cast):
    try:
        value = cast(text)
    except (TypeError, ValueError, OverflowError):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def positive_int(text):
    value = _number(text, int)
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, got '{text}'")
    return value


def nonnegative_float(text):
    value = _number(text, float)
    if value is None or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number of 0 or more, got '{text}'")
    return value


def positive_float(text):
    value = _number(text, float)
    if value is None or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite number above 0, got '{text}'")
    return value


def url(text):
    """An http(s) or file URL with a host (or a path, for file:)."""
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https", "file") or not (parts.netloc or parts.path):
        raise argparse.ArgumentTypeError(
            f"expected an http://, https:// or file:// URL, got '{text}'"
        )
    if parts.scheme != "file" and not parts.netloc:
        raise argparse.ArgumentTypeError(f"'{text}' names no host")
    return text


def names(text, allowed=None, default=(), option="names"):
    """A comma-separated list of names (spaces allowed), each one of `allowed` when given;
    `default` for an empty value (Make passes empty variables as ""). A UsageError names
    `option` and what it takes."""
    from .errors import UsageError

    items = [x.strip() for x in (text or "").replace(" ", ",").split(",") if x.strip()]
    if not items:
        return list(default)
    bad = [x for x in items if allowed is not None and x not in allowed]
    if bad:
        raise UsageError(
            f"{option}: unknown '{bad[0]}' (expected a comma-separated list of "
            f"{', '.join(allowed)})"
        )
    return items


def positive_ints(text, option):
    """A comma-separated list of whole numbers of 1 or more, in order, without repeats; [] for
    an empty value."""
    from .errors import UsageError

    out = []
    for item in names(text, None, (), option):
        value = _number(item, int)
        if value is None or value < 1 or str(value) != item.lstrip("+"):
            raise UsageError(f"{option}: expected whole numbers of 1 or more, got '{item}'")
        if value not in out:
            out.append(value)
    return out


def optional(kind):
    """`kind`, with "" meaning the default (Make passes empty variables as "")."""

    def parse(text):
        return "" if text == "" else kind(text)

    parse.__name__ = kind.__name__
    return parse


def summary(doc):
    """A module docstring's first paragraph on one line: a command's --help description, whole
    however its sentence is wrapped."""
    first = doc.strip().split("\n\n", 1)[0]
    return " ".join(first.split())
