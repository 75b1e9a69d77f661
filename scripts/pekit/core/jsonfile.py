"""JSON as the standard has it: NaN and infinities are written as null and never read.

Python's json module writes `NaN` and `Infinity`, which no other JSON reader accepts, and reads
them back. The kit's JSON goes through here instead.
"""

import json
import math

from .errors import PekitError


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


def loads(text):
    """Parse JSON text; NaN, Infinity and -Infinity are refused (ValueError)."""
    return json.loads(text, parse_constant=_refuse)


def load(path, what="JSON file", kind=dict):
    """The JSON document of `path`, which must be a `kind`; one-line PekitErrors otherwise."""
    try:
        with open(path, "rb") as f:
            doc = loads(f.read().decode("utf-8"))
    except OSError as e:
        raise PekitError(f"{path}: cannot read {what}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise PekitError(f"{path}: {what} is not UTF-8 (byte {e.start})") from None
    except ValueError as e:
        raise PekitError(f"{path}: {what} is not valid JSON: {e}") from None
    if kind is not None and not isinstance(doc, kind):
        raise PekitError(f"{path}: {what} is a JSON {type(doc).__name__}; expected an object")
    return doc
