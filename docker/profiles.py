#!/usr/bin/env python3
"""The image profiles: build arguments and the image's requirement list, from the kit's facts.

Versions come from scripts/pekit/facts/pins.json, image facts from docker/profiles.json; the
Dockerfile has no copy of either. Stdlib only, Python 3.7+ (it also runs inside the paper image):

    python3 docker/profiles.py build-args PROFILE [BASE_IMAGE=REF] [MMF_REPOSITORY=URL|PATH]
    python3 docker/profiles.py image-requirements PROFILE  # what the image (and .venv) install
    python3 docker/profiles.py build-requirements PROFILE  # the lock's setuptools/wheel pins
    python3 docker/profiles.py get PROFILE KEY             # one fact, placeholders filled
    python3 docker/profiles.py check PROFILE [BASE_IMAGE=REF] [MMF_REPOSITORY=URL|PATH]
"""

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


def transformers_version():
    return _load(PINS_FILE)["transformers"]["version"]


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


def image_requirements(name):
    """Every `name==version` the profile's environment installs with --no-deps, in one list.

    torch and torchvision first when the profile takes them from PyPI (modern: the image and
    `make venv` install this same list), then the profile's lock.
    """
    facts = profile(name)
    p = facts["pins"]
    stack = []
    if facts["torch_from"] == "pypi":
        stack = [f"torch=={p['torch']}", f"torchvision=={p['torchvision']}"]
    return stack + [line for _, _, line in read_lock(lock_path(name))]


# What pip needs to build the kit and MMF without build isolation (no download at build time).
BUILD_TOOLS = ("setuptools", "wheel")


def build_requirements(name):
    """The lock's pins of the build tools, installed before the kit and MMF."""
    return [line for pkg, _, line in read_lock(lock_path(name)) if normalize(pkg) in BUILD_TOOLS]


def base_image(facts):
    ref = facts["base_image"]
    return f"{ref}@{facts['base_digest']}" if facts.get("base_digest") else ref


# Build arguments that say where something comes from, not which version: a user may point them
# elsewhere (a stand-in or mirrored base image, a clone or bundle of MMF); the versions stay pinned.
SOURCE_ARGS = ("BASE_IMAGE", "MMF_REPOSITORY")


def build_args(name, overrides=()):
    """(key, value) pairs passed to `docker build --build-arg`; `overrides` ("KEY=VALUE") may
    replace the SOURCE_ARGS only."""
    replace = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or key not in SOURCE_ARGS or not value:
            raise SystemExit(
                f"cannot override '{item}': only {' and '.join(SOURCE_ARGS)} may be given"
                " (KEY=VALUE, not empty); versions come from the pins"
            )
        replace[key] = value
    pins = _load(PINS_FILE)
    facts = profile(name)
    p = facts["pins"]
    args = [
        ("PROFILE", name),
        ("BASE_IMAGE", base_image(facts)),
        ("PYTHON_VERSION", p["python"]),
        ("TORCH_VERSION", p["torch"]),
        ("TORCHVISION_VERSION", p["torchvision"]),
        ("CUDA_VERSION", p["cuda"]),
        ("TRANSFORMERS_VERSION", transformers_version()),
        ("MMF_COMMIT", pins["mmf"]["commit"]),
        ("MMF_REPOSITORY", pins["mmf"]["repository"]),
        ("PATCH_SETS", ",".join(p["patch_sets"])),
        ("PIP_VERSION", facts["pip"]),
    ]
    return [(k, replace.get(k, v)) for k, v in args]


def check(name, overrides=()):
    """The refusal of `make`'s image targets for PROFILE and the build's sources, or None."""
    names = profile_names()
    if name not in names:
        return f"make: PROFILE must be one of: {' '.join(names)} (got '{name}')"
    try:
        build_args(name, overrides)
    except SystemExit as e:
        return str(e)
    return None


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    if len(args) >= 2 and args[0] == "build-args":
        print(" ".join(f"--build-arg {k}={v}" for k, v in build_args(args[1], args[2:])))
    elif len(args) == 2 and args[0] == "image-requirements":
        print("\n".join(image_requirements(args[1])))
    elif len(args) == 2 and args[0] == "build-requirements":
        print("\n".join(build_requirements(args[1])))
    elif len(args) == 3 and args[0] == "get":
        value = profile(args[1])
        for part in args[2].split("."):
            value = value[part]
        print(value if isinstance(value, str) else json.dumps(value))
    elif len(args) >= 2 and args[0] == "check":
        refusal = check(args[1], args[2:])
        if refusal:
            print(refusal, file=sys.stderr)
            return 2
    else:
        print("\n".join(__doc__.strip().splitlines()[-5:]), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
