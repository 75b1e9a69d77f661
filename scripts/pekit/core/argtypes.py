"""Option values, parsed strictly, one parser per kind of value, for every command of the kit.

A refusal is a usage error (exit 2) on one line naming the option, the value (shown with its
odd characters escaped, an overlong one cut) and what the option takes. The rules:

- A whole number is ASCII digits and nothing else: no sign, no space, no leading zero, no
  underscore, no decimal point, no other script's digits ('+5', ' 5', '05', '5.0', '1_0' and
  '٥' are refused, though Python's int() takes most of them), within the option's range.
- A number (seconds, minutes, a tolerance) is ASCII digits with at most one decimal point and
  an optional exponent, finite, without a sign, within the option's range.
- A list is comma-separated (spaces around and between items allowed); an empty item ('a,,b',
  'a,') and a repeated item are refused, the same way for every list option.
- An empty value stands for the option's default wherever the option has one (Make passes an
  unset variable as ""); a value an option requires is never empty.
- A path is not empty, holds no NUL or other control character and fits the file system's
  limits (4096 bytes, 255 a component).
"""

import argparse
import math
import re
import unicodedata
import urllib.parse

# Counts with no bound of their own (a batch, updates, items, images): a million is more than
# any dataset, batch or bench count of the kit; a larger value is a typo, not a setting.
COUNT_MAX = 10**6
# Seconds to wait (a fetch's --timeout): a week.
SECONDS_MAX = 7 * 24 * 3600
PATH_MAX = 4096  # Linux's PATH_MAX, in bytes
NAME_MAX = 255  # a path component, in bytes

_WHOLE = re.compile(r"0|[1-9][0-9]*", re.ASCII)
_DECIMAL = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]{1,3})?", re.ASCII)
_SHOWN = 60


def shown(text):
    """`text` quoted for a one-line message: control and invisible characters escaped, cut after
    60 characters (saying how long it was)."""
    text = str(text)
    cut = f"... ({len(text)} characters)" if len(text) > _SHOWN else ""
    body = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text[:_SHOWN])
    return f"'{body}'{cut}"


class _Refused(Exception):
    """What a value is not, worded for the option's message."""


def _fmt(value):
    return str(value) if isinstance(value, int) else f"{value:g}"


def _range(least, most):
    if most is None:
        return f"of {_fmt(least)} or more"
    return f"from {_fmt(least)} to {_fmt(most)}"


def whole_value(text, least=1, most=COUNT_MAX, what="a whole number"):
    """`text` as an int in [least, most]; _Refused saying what was expected."""
    if not isinstance(text, str) or not _WHOLE.fullmatch(text) or len(text) > 30:
        raise _Refused(f"expected {what} {_range(least, most)}, got {shown(text)}")
    value = int(text)
    if value < least or (most is not None and value > most):
        raise _Refused(f"expected {what} {_range(least, most)}, got {shown(text)}")
    return value


def number_value(text, least=0.0, most=None, above=False, unit=""):
    """`text` as a finite float in [least, most] (above `least` when `above`)."""
    bound = f"above {_fmt(least)}" if above else _range(least, None)
    if most is not None:
        bound = f"above {_fmt(least)} and up to {_fmt(most)}" if above else _range(least, most)
    bound += f" {unit}" if unit else ""
    if not isinstance(text, str) or not _DECIMAL.fullmatch(text):
        raise _Refused(f"expected a number {bound}, got {shown(text)}")
    value = float(text)
    if (
        not math.isfinite(value)
        or value < least
        or (above and value == least)
        or (most is not None and value > most)
    ):
        raise _Refused(f"expected a number {bound}, got {shown(text)}")
    return value


def _argtype(parse, name):
    """An argparse type from a parser raising _Refused (argparse prefixes the option)."""

    def kind(text):
        try:
            return parse(text)
        except _Refused as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    kind.__name__ = name
    return kind


def whole(least=1, most=COUNT_MAX):
    """argparse type: a whole number in [least, most]."""
    return _argtype(lambda text: whole_value(text, least, most), "whole number")


def number(least=0.0, most=None, above=False, unit=""):
    """argparse type: a finite number in [least, most] (above `least` when `above`)."""
    return _argtype(lambda text: number_value(text, least, most, above, unit), "number")


positive_int = whole(1, COUNT_MAX)
nonnegative_float = number(0.0)
positive_float = number(0.0, above=True)


def _path_value(text):
    if not isinstance(text, str) or text == "":
        raise _Refused("expected a path, got an empty value")
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise _Refused(f"expected a path without control characters, got {shown(text)}")
    encoded = text.encode("utf-8", "surrogateescape")
    if len(encoded) >= PATH_MAX:
        raise _Refused(f"expected a path of at most {PATH_MAX - 1} bytes, got {shown(text)}")
    if any(len(part) > NAME_MAX for part in encoded.split(b"/")):
        raise _Refused(
            f"expected a path whose names are at most {NAME_MAX} bytes each, got {shown(text)}"
        )
    return text


path = _argtype(_path_value, "path")


def url(text):
    """An http(s) or file URL with a host (or a path, for file:)."""
    if not isinstance(text, str) or any(not c.isprintable() for c in text) or " " in text:
        raise argparse.ArgumentTypeError(
            f"expected an http://, https:// or file:// URL, got {shown(text)}"
        )
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https", "file") or not (parts.netloc or parts.path):
        raise argparse.ArgumentTypeError(
            f"expected an http://, https:// or file:// URL, got {shown(text)}"
        )
    if parts.scheme != "file" and not parts.netloc:
        raise argparse.ArgumentTypeError(f"{shown(text)} names no host")
    return text


def location(text):
    """A URL or a path (a clone, a bundle): either, strictly."""
    if isinstance(text, str) and re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", text):
        return url(text)
    return path(text)


def glibc(text):
    """A glibc version as pip's manylinux tags know it: MAJOR.MINOR, 2.5 to 2.99."""
    if not isinstance(text, str) or not re.fullmatch(r"2\.(?:[5-9]|[1-9][0-9])", text, re.ASCII):
        raise argparse.ArgumentTypeError(
            f"expected a glibc version MAJOR.MINOR from 2.5 to 2.99 (like 2.28), got {shown(text)}"
        )
    return text


def torch_device(text):
    """A torch device: cpu, cuda, cuda:N or mps (checked before torch is imported)."""
    if not isinstance(text, str) or not re.fullmatch(
        r"cpu|mps|cuda(?::(?:0|[1-9][0-9]{0,2}))?", text, re.ASCII
    ):
        raise argparse.ArgumentTypeError(
            f"expected a torch device: cpu, cuda, cuda:N or mps, got {shown(text)}"
        )
    return text


def optional(kind, default=None):
    """`kind`, with "" meaning the option's default (Make passes an unset variable as "")."""

    def parse(text):
        return default if text == "" else kind(text)

    parse.__name__ = kind.__name__
    return parse


# ---- lists: one rule for every comma-separated option ------------------------------------


def items(text, option):
    """The items of a comma-separated list (spaces around and between items allowed); [] for an
    empty value. An empty item and a repeated one are refused, naming `option`."""
    from .errors import UsageError

    text = text or ""
    if not text.strip(" "):
        return []
    out = []
    for part in text.split(","):
        words = part.split(" ")
        words = [w for w in words if w]
        if not words:
            raise UsageError(
                f"{option}: an empty item in {shown(text)} (expected a comma-separated list)"
            )
        for word in words:
            if word in out:
                raise UsageError(f"{option}: {shown(word)} given twice (each item once)")
            out.append(word)
    return out


def names(text, allowed=None, default=(), option="names"):
    """A comma-separated list of names, each one of `allowed` when given; `default` for an empty
    value. A UsageError names `option` and what it takes."""
    from .errors import UsageError

    listed = items(text, option)
    if not listed:
        return list(default)
    bad = [x for x in listed if allowed is not None and x not in allowed]
    if bad:
        raise UsageError(
            f"{option}: unknown {shown(bad[0])} (expected a comma-separated list of "
            f"{', '.join(allowed)})"
        )
    return listed


def name(text, allowed, default, option):
    """One name of `allowed`; `default` for an empty value."""
    from .errors import UsageError

    if text in ("", None):
        return default
    if text not in allowed:
        raise UsageError(f"{option}: unknown {shown(text)} (expected one of {', '.join(allowed)})")
    return text


def whole_numbers(text, option, least=1, most=COUNT_MAX, default="", why=""):
    """A comma-separated list of whole numbers in [least, most], in order, each once; `default`
    (a list in the same form) for an empty value. `why` explains the range in a refusal."""
    from .errors import UsageError

    listed = items(text, option) or items(default, option)
    out = []
    for item in listed:
        try:
            out.append(whole_value(item, least, most, what="whole numbers"))
        except _Refused as e:
            raise UsageError(f"{option}: {e}{why}") from None
    return out


def no_repeats(values, option):
    """`values` (of a repeatable option), refused when one is given twice."""
    from .errors import UsageError

    seen = []
    for value in values or []:
        if value in seen:
            raise UsageError(f"{option}: {shown(value)} given twice (each once)")
        seen.append(value)
    return list(seen)


def summary(doc):
    """A module docstring's first paragraph on one line: a command's --help description, whole
    however its sentence is wrapped."""
    first = doc.strip().split("\n\n", 1)[0]
    return " ".join(first.split())
