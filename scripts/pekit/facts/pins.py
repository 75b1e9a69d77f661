"""The kit's pinned versions, read from facts/pins.json (the single source of truth).

Runnable without installing the kit, for Makefiles and Dockerfiles:
    python3 scripts/pekit/facts/pins.py mmf.commit
"""

import json
import sys
from pathlib import Path

FACTS_DIR = Path(__file__).resolve().parent
PINS_FILE = FACTS_DIR / "pins.json"


def load_pins(path=PINS_FILE):
    """facts/pins.json, through the kit's one JSON reader (a broken file: one line naming it);
    run as a script, without the kit, as Python reads it."""
    try:
        from ..core import jsonfile
    except ImportError:  # pins.py run as a script (Makefiles, Dockerfiles)
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    return jsonfile.load(path, "the kit's pins")


def get(dotted, pins=None):
    """Return the value at a dotted key such as 'mmf.commit' or 'profiles.modern.torch'."""
    node = load_pins() if pins is None else pins
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(f"{PINS_FILE}: no key '{dotted}' (stopped at '{part}')")
        node = node[part]
    return node


def supported_pythons(pins=None):
    """{profile: the Pythons the kit runs on}: the tests' Pythons for the profile they test
    (test_env), each other profile's image Python."""
    pins = load_pins() if pins is None else pins
    tested = get("test_env.profile", pins)
    return {
        name: tuple(get("test_env.pythons", pins)) if name == tested else (profile["python"],)
        for name, profile in get("profiles", pins).items()
    }


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: pins.py DOTTED.KEY", file=sys.stderr)
        return 2
    try:
        value = get(args[0])
    except KeyError as e:
        print(e.args[0], file=sys.stderr)
        return 2
    print(value if isinstance(value, str) else json.dumps(value))
    return 0


if __name__ == "__main__":
    sys.exit(main())
