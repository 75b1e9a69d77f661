"""What a frozen-base mode adds to a model, and what an export of it must therefore hold.

PE adds one adapter block to each of its hosts (BertOutput-like sublayers): two Linear layers
named `Adapt...` (pe's patch set: AdaptComb1/AdaptComb2, AdaptText1/AdaptText2), the first
Linear(hidden, bottleneck), the second Linear(bottleneck, hidden), bottleneck =
int(hidden / reduction). LoRA adds to each query and value projection (its host, an nn.Linear
[out, in]) `lora.A` [rank, in] and `lora.B` [out, rank]. FC and BitFit add nothing.

An export records, per host pattern (the host's name with its layer numbers as '#'), how many
hosts there are and their sizes (adapters.json's `sizes`). From that record alone the loader
derives every added tensor's name pattern and shape (expected_added); against the base it
checks that the hosts are the base's, of the recorded sizes and dtype (check_against_base).
"""

from __future__ import annotations

import re

from ..core.errors import PekitError
from ..facts.vocabulary import BITFIT, MODES, SWITCHES
from ..facts.vocabulary import LORA as LORA_KIND
from ..facts.vocabulary import PE as PE_KIND

# What a mode trains, as its pattern of parameter names (pekit.facts.vocabulary's Mode.trains).
ADAPTER = re.compile(MODES[PE_KIND].trains)
LORA = re.compile(MODES[LORA_KIND].trains)
ENCODER_BIAS = re.compile(MODES[BITFIT].trains)
HEADS = ("classifier",)
MODE_KEYS = SWITCHES
PE_MODE = MODES[PE_KIND].switches
_NUMBER = re.compile(r"[0-9]+")


def switches(name):
    """The MODE_KEYS switches of a vocabulary mode."""
    return MODES[name].switches


def mode_name(mode):
    """The vocabulary name of a frozen-base mode's switches (fc, pe, lora, bitfit), or None."""
    for name, m in MODES.items():
        if m.freeze_base and m.switches == dict(mode):
            return name
    return None


def is_trained(name, heads=HEADS, mode=None):
    """Whether `mode` (the MODE_KEYS switches; PE's by default) trains parameter `name`."""
    mode = PE_MODE if mode is None else mode
    return any(h in name.split(".") for h in heads) or any(
        m.switch and mode.get(m.switch) and m.trains_parameter(name) for m in MODES.values()
    )


def added_kind(mode):
    """The mode whose switch is on in `mode` when it adds tensors to the model (pe: adapter
    blocks, lora: LoRA updates), else None."""
    for m in MODES.values():
        if m.adds and mode.get(m.switch):
            return m.name
    return None


def is_added(name, kind):
    """Whether `name` is a tensor of what `kind` adds to the model."""
    return kind in MODES and bool(MODES[kind].adds) and MODES[kind].trains_parameter(name)


WHAT_IS_ADDED = {**{m.name: m.adds for m in MODES.values() if m.adds}, None: "nothing"}
PER_HOST = {PE_KIND: 4, LORA_KIND: 2}  # tensors added to each host
LORA_MODULE = "lora"  # the `pe` patch's LoRALinear keeps its update A, B in this attribute


def split_host(name, kind):
    """(host, the rest) of an added tensor's name: 'a.b.3.output', 'AdaptComb1.weight'."""
    parts = name.split(".")
    for i, part in enumerate(parts):
        if (kind == PE_KIND and part.lower().startswith("adapt")) or (
            kind == LORA_KIND and part == LORA_MODULE and i > 0
        ):
            return ".".join(parts[:i]), ".".join(parts[i:])
    return "", name


def pattern(host):
    """A host's name with its numbers as '#': model.bert.encoder.layer.#.output."""
    return ".".join("#" if _NUMBER.fullmatch(p) else p for p in host.split("."))


def _natural(name):
    return [int(p) if _NUMBER.fullmatch(p) else p for p in name.split(".")]


def _sort_key(name):
    return [(0, p, "") if isinstance(p, int) else (1, 0, p) for p in _natural(name)]


def group(names, kind):
    """{pattern: {host: {rest: name}}} of the added tensors among `names`."""
    out = {}
    for name in names:
        if not is_added(name, kind):
            continue
        host, rest = split_host(name, kind)
        out.setdefault(pattern(host), {}).setdefault(host, {})[rest] = name
    return out


def _pe_modules(host, rests, where):
    """The two Linear layers of a host's adapter block, in name order (down, then up)."""
    modules = sorted({r.rpartition(".")[0] for r in rests})
    expected = {f"{m}.{p}" for m in modules for p in ("weight", "bias")}
    if len(modules) != 2 or set(rests) != expected or not all(modules):
        raise PekitError(
            f"{where}: adapter tensors {', '.join(sorted(rests))} of {host!r}; expected the "
            "weight and bias of two Linear layers (4 tensors)"
        )
    return modules


def layout(shapes, mode, where):
    """adapters.json's `sizes.hosts` for the added tensors of `shapes` ({name: shape}), and
    LoRA's rank (None for other modes): what an export records of its own tensors."""
    kind = added_kind(mode)
    hosts, rank = {}, None
    for pat, by_host in sorted(group(shapes, kind).items()):
        first = sorted(by_host, key=_sort_key)[0]
        rests = by_host[first]
        if not first:
            raise PekitError(f"{where}: tensor {sorted(rests.values())[0]!r} has no host module")
        if kind == PE_KIND:
            down = _pe_modules(first, rests, where)[0]
            shape = list(shapes[rests[f"{down}.weight"]])
            if len(shape) != 2:
                raise PekitError(
                    f"{where}: tensor {rests[down + '.weight']!r} is {shape}; expected a "
                    "Linear layer's weight [bottleneck, hidden]"
                )
            hosts[pat] = {"count": len(by_host), "hidden_size": shape[1], "bottleneck": shape[0]}
        else:
            a, b = (list(shapes[rests[r]]) if r in rests else None for r in ("lora.A", "lora.B"))
            if a is None or b is None or len(a) != 2 or len(b) != 2:
                raise PekitError(
                    f"{where}: LoRA tensors {', '.join(sorted(rests))} of {first!r}; expected "
                    "lora.A [rank, in] and lora.B [out, rank]"
                )
            if rank is None:
                rank = a[0]
            hosts[pat] = {"count": len(by_host), "in_features": a[1], "out_features": b[0]}
    for pat, record in hosts.items():
        if not all(v >= 1 for v in record.values()) or (rank is not None and rank < 1):
            raise PekitError(f"{where}: {kind} tensors of {pat!r} have an empty dimension")
    if kind == LORA_KIND and rank is None:
        raise PekitError(f"{where}: a LoRA export without LoRA tensors ('.lora.' names)")
    if kind == PE_KIND and not hosts:
        raise PekitError(f"{where}: a PE export without adapter tensors ('Adapt' names)")
    return hosts, rank


def expected_added(keys, mode, hosts, rank, where):
    """{name: shape} of every added tensor among `keys`, derived from the recorded `hosts`
    (adapters.json's sizes.hosts) and `rank`: every host pattern recorded is present, with its
    count of hosts, each host holding exactly what the mode adds, named alike in all hosts."""
    kind = added_kind(mode)
    found = group(keys, kind)
    for pat, by_host in sorted(found.items()):
        if pat not in hosts:
            name = sorted(next(iter(by_host.values())).values())[0]
            raise PekitError(
                f"{where}: tensor {name!r} is not of a host adapters.json's sizes.hosts records "
                f"(no {pat!r}); expected only {', '.join(sorted(hosts)) or 'no added tensor'}"
            )
    shapes = {}
    for pat, record in sorted(hosts.items()):
        by_host = found.get(pat, {})
        if len(by_host) != record["count"]:
            raise PekitError(
                f"{where}: {len(by_host)} hosts {pat!r} hold {kind} tensors; expected "
                f"{record['count']} (adapters.json's sizes.hosts)"
            )
        ordered = sorted(by_host, key=_sort_key)
        for host in ordered:  # each host holds what the mode adds ...
            rests = by_host[host]
            if kind == PE_KIND:
                _pe_modules(host, rests, where)
            elif sorted(rests) != ["lora.A", "lora.B"]:
                raise PekitError(
                    f"{where}: {host!r} holds {', '.join(sorted(rests))}; expected lora.A and "
                    "lora.B"
                )
        reference = sorted(by_host[ordered[0]])
        for host in ordered:  # ... named alike in every host
            rests = by_host[host]
            if sorted(rests) != reference:
                odd = sorted(set(rests) ^ set(reference))[0]
                raise PekitError(
                    f"{where}: {host!r} holds {', '.join(sorted(rests))}; expected "
                    f"{', '.join(reference)} as {ordered[0]!r} does (differs at {odd!r})"
                )
            if kind == PE_KIND:
                down, up = _pe_modules(host, rests, where)
                h, b = record["hidden_size"], record["bottleneck"]
                want = {
                    f"{down}.weight": [b, h],
                    f"{down}.bias": [b],
                    f"{up}.weight": [h, b],
                    f"{up}.bias": [h],
                }
            else:
                want = {
                    "lora.A": [rank, record["in_features"]],
                    "lora.B": [record["out_features"], rank],
                }
            for rest, shape in want.items():
                shapes[rests[rest]] = shape
    return shapes


def _describe(tensor):
    return f"{str(tensor.dtype).replace('torch.', '')} {list(tensor.shape)}"


def _hosts_in(base, pat):
    n = len(pat.split("."))
    out = set()
    for name in base:
        parts = name.split(".")
        if len(parts) > n and pattern(".".join(parts[:n])) == pat:
            out.add(".".join(parts[:n]))
    return out


def check_against_base(keys, weights, mode, hosts, base, where, base_where):
    """The export's tensors fit the base they replace or extend: each tensor the base has is of
    the base's dtype and shape; each one it lacks is one the mode adds, on a host the base has,
    of the base's sizes and dtype; every tensor the mode trains in the base is exported."""
    kind = added_kind(mode)
    label = MODES[mode_name(mode)].label if mode_name(mode) else "this mode"
    for name in sorted(keys, key=_sort_key):
        t = weights[name]
        if name in base:
            b = base[name]
            if t.dtype != b.dtype or tuple(t.shape) != tuple(b.shape):
                raise PekitError(
                    f"{where}: tensor {name!r} is {_describe(t)}; expected {_describe(b)} as "
                    f"the base's ({base_where})"
                )
        elif not is_added(name, kind):
            raise PekitError(
                f"{where}: tensor {name!r} is not in the base ({base_where}) and {label} adds "
                f"{WHAT_IS_ADDED[kind]}; expected only tensors of the base or of those"
            )
    missing = [n for n in base if is_trained(n, HEADS, mode) and n not in keys]
    if missing:
        missing.sort(key=_sort_key)
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise PekitError(
            f"{where}: no tensor {missing[0]!r}{more}, which {label} trains in the base "
            f"({base_where}); expected every tensor the mode trains"
        )
    found = group(keys, kind)
    for pat, record in sorted(hosts.items()):
        ours = set(found.get(pat, {}))
        theirs = _hosts_in(base, pat)
        if ours != theirs:
            odd = sorted(ours ^ theirs, key=_sort_key)[0]
            has, lacks = ("the base", "the export") if odd in theirs else ("the export", "the base")
            raise PekitError(
                f"{where}: {has} has {odd!r} ({pat}) and {lacks} has not; expected {label}'s "
                f"tensors on every such host of the base ({base_where})"
            )
        for host in sorted(ours, key=_sort_key):
            if kind == PE_KIND:
                ref = base.get(f"{host}.LayerNorm.weight")
                if ref is None or ref.dim() != 1 or ref.shape[0] != record["hidden_size"]:
                    raise PekitError(
                        f"{where}: {host!r} of the base ({base_where}) has "
                        f"{'no LayerNorm.weight' if ref is None else 'LayerNorm.weight ' + _describe(ref)}"
                        f"; expected hidden size {record['hidden_size']} (adapters.json's sizes)"
                    )
            else:
                ref = base.get(f"{host}.weight")
                want = [record["out_features"], record["in_features"]]
                if ref is None or list(ref.shape) != want:
                    raise PekitError(
                        f"{where}: {host!r} of the base ({base_where}) has "
                        f"{'no weight' if ref is None else 'weight ' + _describe(ref)}; expected "
                        f"a projection {want} (adapters.json's sizes)"
                    )
            for name in sorted(found[pat][host].values()):
                if weights[name].dtype != ref.dtype:
                    raise PekitError(
                        f"{where}: tensor {name!r} is {_describe(weights[name])}; expected "
                        f"{str(ref.dtype).replace('torch.', '')} as {host!r} of the base "
                        f"({base_where})"
                    )
