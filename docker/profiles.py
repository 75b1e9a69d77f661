#!/usr/bin/env python3
"""The image profiles: build arguments and the image's requirement list, from the kit's facts.

Versions come from scripts/pekit/facts/pins.json, image facts from docker/profiles.json; the
Dockerfile has no copy of either. Stdlib only, Python 3.7+ (it also runs inside the paper image):

    python3 docker/profiles.py build-args PROFILE         # --build-arg K=V ..., for docker build
    python3 docker/profiles.py image-requirements PROFILE  # the lock lines the image installs
    python3 docker/profiles.py get PROFILE KEY             # one fact, placeholders filled
"""

import fnmatch
import json
import re
import sys
from pathlib import Path

DOCKER_DIR = Path(__file__).resolve().parent
REPO_ROOT = DOCKER_DIR.parent
PROFILES_FILE = DOCKER_DIR / "profiles.json"
PINS_FILE = REPO_ROOT / "scripts" / "pekit" / "facts" / "pins.json"

_REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)")


def _load(path):
    with open(str(path), encoding="utf-8") as f:
        return json.load(f)


def normalize(name):
    """PEP 503 name normalization."""
    return re.sub(r"[-_.]+", "-", name).lower()


def profile_names():
    return sorted(_load(PROFILES_FILE)["profiles"])


def profile(name):
    """The profile's facts, with {python} {torch} {torchvision} filled from pins.json."""
    pins = _load(PINS_FILE)
    profiles = _load(PROFILES_FILE)["profiles"]
    if name not in profiles or name not in pins["profiles"]:
        raise SystemExit(
            f"unknown profile '{name}' (expected one of {', '.join(sorted(profiles))})"
        )
    values = dict(pins["profiles"][name])

    def fill(node):
        if isinstance(node, str):
            return node.format(**values) if "{" in node else node
        if isinstance(node, dict):
            return {k: fill(v) for k, v in node.items()}
        if isinstance(node, list):
            return [fill(v) for v in node]
        return node

    facts = fill(profiles[name])
    facts["pins"] = values
    return facts


def read_lock(path):
    """[(name, version, line)] of a lock file: one `name==version` a line, # comments."""
    entries = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        m = _REQ.match(text)
        if not m:
            raise SystemExit(f"{path}:{number}: expected 'name==version', got '{line}'")
        entries.append((m.group(1), m.group(2), text))
    return entries


def lock_path(name):
    return REPO_ROOT / profile(name)["pins"]["lock"]


def image_skipped(facts, package):
    patterns = facts.get("image_skips", {}).get("patterns", [])
    return any(fnmatch.fnmatchcase(normalize(package), normalize(p)) for p in patterns)


def image_requirements(name):
    """The lock lines the image installs with --no-deps (the image_skips patterns left out)."""
    facts = profile(name)
    return [line for pkg, _, line in read_lock(lock_path(name)) if not image_skipped(facts, pkg)]


def base_image(facts):
    ref = facts["base_image"]
    return f"{ref}@{facts['base_digest']}" if facts.get("base_digest") else ref


def build_args(name):
    """(key, value) pairs passed to `docker build --build-arg`."""
    pins = _load(PINS_FILE)
    facts = profile(name)
    p = facts["pins"]
    return [
        ("PROFILE", name),
        ("BASE_IMAGE", base_image(facts)),
        ("PYTHON_VERSION", p["python"]),
        ("TORCH_VERSION", p["torch"]),
        ("TORCHVISION_VERSION", p["torchvision"]),
        ("TORCH_INDEX_URL", facts.get("torch_index") or "none"),
        ("TRANSFORMERS_VERSION", pins["transformers"]["version"]),
        ("MMF_COMMIT", pins["mmf"]["commit"]),
        ("MMF_REPOSITORY", pins["mmf"]["repository"]),
        ("PATCH_SETS", ",".join(p["patch_sets"])),
        ("PIP_VERSION", facts["pip"]),
    ]


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "build-args":
        print(" ".join(f"--build-arg {k}={v}" for k, v in build_args(args[1])))
    elif len(args) == 2 and args[0] == "image-requirements":
        print("\n".join(image_requirements(args[1])))
    elif len(args) == 3 and args[0] == "get":
        value = profile(args[1])
        for part in args[2].split("."):
            value = value[part]
        print(value if isinstance(value, str) else json.dumps(value))
    else:
        print("\n".join(__doc__.strip().splitlines()[-3:]), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
