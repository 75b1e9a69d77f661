"""`pekit patch status|check|apply|revert|manifest`."""

from __future__ import annotations

from ..core import argtypes
from ..core.errors import PekitError, UsageError
from ..facts import pins
from ..setup.patching import engine, manifest, targets


def register(subparsers):
    p = subparsers.add_parser(
        "patch",
        help="apply, check, revert or show the version-checked patches",
        description="Version-checked patches of transformers and MMF. Exit codes: 0 done or "
        "nothing to do, 1 refused (nothing written), 2 usage error.",
    )
    p.add_argument("action", choices=["status", "check", "apply", "revert", "manifest"])
    p.add_argument(
        "--transformers",
        metavar="DIR",
        help="folder holding the 'transformers' package (default: the active environment's)",
    )
    p.add_argument(
        "--mmf",
        metavar="DIR",
        help="folder holding the 'mmf' package, e.g. an MMF checkout root (default: importable mmf)",
    )
    p.add_argument(
        "--sets",
        default="auto",
        help=f"comma-separated patch sets: {', '.join(manifest.SETS)}; 'auto' (default): the "
        "sets pins.json gives the running stack's profile, modern (Python >= 3.10 or torch >= 2) "
        f"{_profile_sets('modern')}, else paper {_profile_sets('paper')}",
    )
    p.add_argument(
        "--only",
        choices=list(manifest.TARGETS),
        action="append",
        help="limit to this target (repeatable); default: every target",
    )
    p.set_defaults(func=run)


def _profile_sets(profile):
    return ",".join(pins.load_pins()["profiles"][profile]["patch_sets"])


def parse_sets(text):
    """'auto' (or empty): the running stack's sets; else a list of sets by argtypes' one rule."""
    if text in ("auto", ""):
        return targets.default_sets()
    return tuple(argtypes.names(text, manifest.SETS, (), "--sets"))


def run(args):
    sets = parse_sets(args.sets)
    wanted = tuple(argtypes.no_repeats(args.only, "--only")) if args.only else manifest.TARGETS
    explicit = {"transformers": args.transformers, "mmf": args.mmf}
    if args.action == "manifest":
        return _manifest(explicit)
    roots = {}
    for t in wanted:
        roots[t] = targets.find_root(t, explicit[t])
    patches = manifest.load()
    entries = patches.select(sets=sets, targets=wanted)
    if not entries:
        raise PekitError(
            f"{patches.path}: no patch of sets {','.join(sets)} for "
            f"{', '.join(wanted)}; nothing to {args.action}"
        )
    for f in engine.recover(entries, roots):
        print(f"finished an interrupted change: {f}")
    if args.action == "status":
        for t in wanted:
            if roots[t] is None:
                print(f"{t}: not found (pass --{t} DIR)")
        states = engine.file_states(entries, roots)
        for s in states:
            print(f"{s.state:9} {s.entry.set:6} {s.file}")
        _refuse_mixed(states)
        return 0
    if args.action == "check":
        states = engine.check(entries, roots)
        _refuse_mixed(states)
        counts = {}
        for s in states:
            counts[s.state] = counts.get(s.state, 0) + 1
        summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        print(f"ok: {summary} (sets: {','.join(sets)})")
        return 0
    outcome = (engine.apply if args.action == "apply" else engine.revert)(entries, roots)
    if outcome.files:
        for f in outcome.files:
            print(f"{outcome.action}: {f}")
    else:
        print(f"{outcome.action} (sets: {','.join(sets)}); nothing written")
    return 0


def _refuse_mixed(states):
    """Files part patched, part pristine: no state a complete apply or revert leaves."""
    mixed = engine.mixed(states)
    if mixed:
        parts = "; ".join(
            f"set {name}: {patched} patched, {pristine} pristine"
            for name, (patched, pristine) in sorted(mixed.items())
        )
        raise PekitError(
            f"mixed tree ({parts}): run `pekit patch apply` to finish patching it, or "
            "`pekit patch revert` to make it pristine"
        )


def _manifest(explicit):
    """Regenerate patches/manifest.json from the diffs and PRISTINE upstream trees."""
    if not explicit["transformers"] or not explicit["mmf"]:
        raise UsageError("manifest needs --transformers DIR and --mmf DIR (pristine trees)")
    roots = {t: targets.find_root(t, explicit[t]) for t in manifest.TARGETS}
    p = pins.load_pins()
    for t in manifest.TARGETS:
        print(targets.check_version(t, roots[t], p))
    entries = manifest.build(roots, pin_data=p)
    path = manifest.write(entries)
    print(f"wrote {path} ({len(entries)} files)")
    return 0
