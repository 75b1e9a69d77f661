"""Property-style mutations of a valid file, for the tests of the kit's readers.

Given a valid JSON document (one the kit wrote), `mutations()` yields broken and hostile
versions of its file: every field's value swapped for each other JSON type, removed, made huge
(1e308, 10**400 written out), negative, zero, an empty, endless, multi-line, path-like or
unpaired-surrogate string, or nested 100000 lists deep; and the whole file truncated at several
offsets, holding invalid UTF-8, NaN or a byte-order mark, a non-object top level, empty, nested
100000 deep, or a folder where the file should be. `text_mutations()` does the same for a
line-based text file (an MMF log, a METADATA file): numbers made huge, nan, inf, negative, zero;
endless lines, binary garbage, truncation.

Sampling is seeded: the same seed gives the same mutations.
"""

from __future__ import annotations

import copy
import json
import random
import re
from dataclasses import dataclass
from typing import Optional, Tuple

DEEP = 100_000
HUGE_INT = 10**400
SAMPLES = {
    "null": None,
    "boolean": True,
    "number": 7,
    "string": "x",
    "list": [],
    "object": {},
}
STRINGS = {
    "empty": "",
    "endless": "x" * 100_000,
    "multi-line": "two\nlines",
    "path": "../../etc/passwd",
    "surrogate": "\ud800",
}
_PLACEHOLDER = "\x00pekit-mutation\x00"


@dataclass(frozen=True)
class Mutation:
    """One broken version of a file: `content` (bytes), or None for a folder in its place."""

    kind: str
    path: Tuple = ()
    content: Optional[bytes] = b""

    @property
    def label(self):
        return f"{self.kind} at {path_text(self.path)}" if self.path else self.kind


def path_text(path):
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def json_type(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


def field_paths(doc, prefix=()):
    """Every field's path in `doc` (tuples of keys and indices), parents before children."""
    if isinstance(doc, dict):
        items = doc.items()
    elif isinstance(doc, list):
        items = enumerate(doc)
    else:
        return
    for key, value in items:
        path = prefix + (key,)
        yield path
        yield from field_paths(value, path)


def shape(path):
    """A path with its list indices as '*': the fields every item of a list shares."""
    return tuple("*" if isinstance(p, int) else p for p in path)


def _get(doc, path):
    for part in path:
        doc = doc[part]
    return doc


def _with(doc, path, value=None, remove=False):
    out = copy.deepcopy(doc)
    parent = _get(out, path[:-1])
    if remove:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return out


def _dump(doc):
    return json.dumps(doc, indent=1)


def _deep_text():
    return "[" * DEEP + "]" * DEEP


def value_mutations(doc, paths=None):
    """The mutations of each field's value (see the module's doc); of the fields at `paths`
    only when given."""
    for path in field_paths(doc) if paths is None else sorted(paths, key=_order):
        value = _get(doc, path)
        have = json_type(value)
        for kind, sample in SAMPLES.items():
            if kind != have:
                yield Mutation(f"type:{kind}", path, _dump(_with(doc, path, sample)).encode())
        if isinstance(path[-1], str):
            yield Mutation("missing", path, _dump(_with(doc, path, remove=True)).encode())
        if have == "number":
            yield Mutation("huge:1e308", path, _dump(_with(doc, path, 1e308)).encode())
            yield Mutation("huge:10**400", path, _dump(_with(doc, path, HUGE_INT)).encode())
            yield Mutation("negative", path, _dump(_with(doc, path, -value or -1)).encode())
            if value != 0:
                yield Mutation("zero", path, _dump(_with(doc, path, 0)).encode())
            text = _dump(_with(doc, path, _PLACEHOLDER))
            for constant in ("NaN", "Infinity"):
                yield Mutation(
                    f"constant:{constant}",
                    path,
                    text.replace(json.dumps(_PLACEHOLDER), constant).encode(),
                )
        if have == "string":
            for kind, sample in STRINGS.items():
                if sample != value:
                    yield Mutation(f"string:{kind}", path, _dump(_with(doc, path, sample)).encode())
        text = _dump(_with(doc, path, _PLACEHOLDER))
        yield Mutation("deep", path, text.replace(json.dumps(_PLACEHOLDER), _deep_text()).encode())


def document_mutations(doc, seed=0):
    """The mutations of the whole file (see the module's doc)."""
    data = _dump(doc).encode()
    rng = random.Random(seed)
    n = len(data)
    offsets = sorted(
        {1, n // 4, n // 2, 3 * n // 4, n - 1, *rng.sample(range(1, n), min(3, n - 1))}
    )
    for offset in offsets:
        yield Mutation(f"truncated:{offset}", (), data[:offset])
    for offset in sorted({0, n // 2, n - 1}):
        yield Mutation(f"invalid-utf8:{offset}", (), data[:offset] + b"\xff\xfe" + data[offset:])
    middle = data.find(b'"', n // 2)
    if middle > 0:  # inside a string: an overlong encoding, then a lone continuation byte
        yield Mutation(
            "invalid-utf8:in-string", (), data[: middle + 1] + b"\xc0\xaf\x80" + data[middle + 1 :]
        )
    for kind, sample in SAMPLES.items():
        if kind != json_type(doc):
            yield Mutation(f"top-level:{kind}", (), _dump(sample).encode())
    yield Mutation("empty", (), b"")
    yield Mutation("whitespace", (), b" \n\t\n")
    yield Mutation("bom", (), b"\xef\xbb\xbf" + data)
    yield Mutation("deep-document", (), _deep_text().encode())
    yield Mutation("deep-object", (), ('{"a":' * DEEP + "1" + "}" * DEEP).encode())
    yield Mutation("nan-document", (), b"NaN")
    yield Mutation("garbage", (), bytes(rng.randrange(256) for _ in range(512)))
    yield Mutation("two-documents", (), data + b"\n" + data)
    yield Mutation("folder", (), None)


def mutations(doc, seed=0, limit=None, per_shape=2):
    """The mutations of the file holding `doc`: every document mutation, and those of the
    fields of up to `per_shape` paths of each shape (the items of a long list share theirs),
    seeded-sampled down to `limit` in all when given."""
    rng = random.Random(seed)
    whole = list(document_mutations(doc, seed))
    chosen, seen = set(), {}
    for path in field_paths(doc):
        seen.setdefault(shape(path), []).append(path)
    for paths in seen.values():
        chosen.update(paths if len(paths) <= per_shape else rng.sample(paths, per_shape))
    fields = list(value_mutations(doc, chosen))
    if limit is not None and len(whole) + len(fields) > limit:
        fields = rng.sample(fields, max(limit - len(whole), 0))
    return whole + fields


def _order(path):
    return tuple(
        (isinstance(p, int), str(p) if not isinstance(p, int) else f"{p:09d}") for p in path
    )


# ---- line-based text files ---------------------------------------------------------------------

_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.])")
NUMBERS = {
    "huge:1e308": "1e308",
    "huge:1e400": "1e400",
    "huge:10**400": str(HUGE_INT),
    "huge:5000-digits": "9" * 5000,
    "nan": "nan",
    "inf": "inf",
    "negative": "-1",
    "zero": "0",
}


def text_mutations(data, seed=0, limit=None, lines=None):
    """Mutations of a line-based text file's bytes `data`: each number of up to `lines` sampled
    lines replaced by every value of NUMBERS; an endless line, binary garbage and NUL bytes
    inserted; truncation at several offsets; invalid UTF-8; empty; a folder in its place."""
    rng = random.Random(seed)
    text = data.decode("utf-8", "replace")
    rows = text.splitlines(True)
    whole = []
    n = len(data)
    for offset in sorted({1, n // 3, n // 2, n - 1, *rng.sample(range(1, n), min(3, n - 1))}):
        whole.append(Mutation(f"truncated:{offset}", (), data[:offset]))
    middle = len(rows) // 2
    head, tail = "".join(rows[:middle]).encode(), "".join(rows[middle:]).encode()
    whole += [
        Mutation("endless-line", (), head + b"progress: " + b"1" * (4 << 20) + b"\n" + tail),
        Mutation("endless-unterminated", (), data + b"train/x: " + b"train/" * (1 << 20)),
        Mutation("garbage", (), head + bytes(rng.randrange(256) for _ in range(4096)) + tail),
        Mutation("nul-bytes", (), head + b"\x00" * 1000 + b"\n" + tail),
        Mutation("invalid-utf8", (), head + b"\xff\xfe\xc0\xaf\n" + tail),
        Mutation("empty", (), b""),
        Mutation("folder", (), None),
    ]
    numbered = [i for i, row in enumerate(rows) if _NUMBER.search(row)]
    if lines is not None and len(numbered) > lines:
        numbered = sorted(rng.sample(numbered, lines))
    fields = []
    for i in numbered:
        for kind, value in NUMBERS.items():
            row = _NUMBER.sub(value, rows[i])
            fields.append(
                Mutation(
                    f"numbers:{kind}", (i + 1,), "".join(rows[:i] + [row] + rows[i + 1 :]).encode()
                )
            )
    if limit is not None and len(whole) + len(fields) > limit:
        fields = rng.sample(fields, max(limit - len(whole), 0))
    return whole + fields


def write(path, mutation):
    """Put `mutation` where the file `path` is: its bytes, or a folder."""
    import shutil
    from pathlib import Path

    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    if mutation.content is None:
        path.mkdir()
        (path / "inside").write_text("a folder where a file should be")
    else:
        path.write_bytes(mutation.content)
