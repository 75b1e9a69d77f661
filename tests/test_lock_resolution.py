"""Each image profile's Python lock resolves against PyPI for that image's Python and platform.

For every pinned `name==version` (the lock, plus transformers from pins.json) PyPI must hold a
file pip would install there: a wheel whose tags match the image's interpreter and glibc and
whose Requires-Python admits its Python, or, for packages docker/profiles.json declares
source-only, an sdist. Packages that come from elsewhere (the paper profile's base
image) are listed in docker/profiles.json `not_on_pypi`, never dropped silently: a test checks
that they are the base image's. PyPI's JSON simple index (PEP 691) is read, one small document
a project, cached in .cache/pypi-simple/; with the cache filled nothing is fetched. Skips only
when PyPI cannot be reached.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pekit.core import location
from pekit.facts import pins

packaging = pytest.importorskip("packaging")
from packaging import tags as ptags  # noqa: E402
from packaging.specifiers import InvalidSpecifier, SpecifierSet  # noqa: E402
from packaging.utils import (  # noqa: E402
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version  # noqa: E402

REPO = location.kit_root()
sys.path.insert(0, str(REPO / "docker"))
import profiles  # noqa: E402

CACHE = REPO / ".cache" / "pypi-simple"
INDEX = "https://pypi.org/simple/{}/"
ACCEPT = "application/vnd.pypi.simple.v1+json"
# The legacy manylinux names and the glibc they stand for.
LEGACY = {"manylinux2014": 17, "manylinux2010": 12, "manylinux1": 5}


def target_tags(platform):
    """Every wheel tag pip accepts on the image's interpreter, best first."""
    major, minor = (int(x) for x in platform["python"].split("."))
    glibc_minor = int(platform["glibc"].split(".")[1])
    arch = platform["arch"]
    plats = [f"manylinux_2_{m}_{arch}" for m in range(glibc_minor, 4, -1)]
    plats += [f"{name}_{arch}" for name, m in LEGACY.items() if m <= glibc_minor]
    version = (major, minor)
    return set(ptags.cpython_tags(version, abis=[platform["abi"]], platforms=plats)) | set(
        ptags.compatible_tags(version, interpreter=f"cp{major}{minor}", platforms=plats)
    )


def _admits(requires_python, python):
    if not requires_python:
        return True
    try:
        return SpecifierSet(requires_python).contains(python)
    except InvalidSpecifier:
        return True  # pip ignores a malformed Requires-Python too


def project_files(name):
    """PyPI's file list for a project (PEP 691), from the cache or the index."""
    key = profiles.normalize(name)
    cached = CACHE / f"{key}.json"
    if cached.is_file():
        return json.loads(cached.read_text())["files"]
    request = urllib.request.Request(INDEX.format(key), headers={"Accept": ACCEPT})
    with urllib.request.urlopen(request, timeout=30) as response:
        data = json.loads(response.read().decode("utf-8"))
    CACHE.mkdir(parents=True, exist_ok=True)
    # A private temporary name: test workers side by side may fetch the same project.
    fd, tmp = tempfile.mkstemp(dir=str(CACHE), prefix=f".{key}-")
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps({"files": data["files"]}))
    os.replace(tmp, str(cached))
    return data["files"]


def installable(files, name, version, platform, sdist_ok):
    """(ok, what): whether a file for name==version installs on `platform`."""
    want = Version(version)
    accepted = target_tags(platform)
    seen = []
    for f in files:
        if f.get("yanked"):
            continue
        filename = f["filename"]
        try:
            if filename.endswith(".whl"):
                _, v, _, wheel_tags = parse_wheel_filename(filename)
                if v != want:
                    continue
                seen.append(filename)
                if wheel_tags & accepted and _admits(f.get("requires-python"), platform["python"]):
                    return True, filename
            elif filename.endswith((".tar.gz", ".zip")):
                _, v = parse_sdist_filename(filename)
                if v != want:
                    continue
                seen.append(filename)
                if sdist_ok and _admits(f.get("requires-python"), platform["python"]):
                    return True, filename
        except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
            continue
    return False, seen


def _few(files, n=4):
    if not files:
        return "no files of that version"
    more = f" and {len(files) - n} more" if len(files) > n else ""
    return ", ".join(files[:n]) + more


def _requirements(profile):
    """What the profile's image installs from PyPI: its stack (torch too, where PyPI's) and
    transformers."""
    facts = profiles.profile(profile)
    reqs = [tuple(line.split("==", 1)) for line in profiles.image_requirements(profile)]
    reqs.append(("transformers", pins.get("transformers.version")))
    return facts, reqs


def _pythons(profile):
    """The Pythons a profile's lock serves: the image's, and for the test environment's profile
    every Python the test environment runs on."""
    python = profiles.profile(profile)["platform"]["python"]
    if profile == pins.get("test_env.profile"):
        return sorted({python, *pins.get("test_env.pythons")})
    return [python]


def _cases():
    checked = []
    for profile in profiles.profile_names():
        for python in _pythons(profile):
            checked.append(pytest.param(profile, python, id=f"{profile}-py{python}"))
    return checked


CHECKED = _cases()


@pytest.fixture(scope="module")
def pypi_reachable():
    try:
        project_files("pip")
    except (urllib.error.URLError, OSError) as e:
        pytest.skip(f"PyPI unreachable ({e}); the lock check needs pypi.org or a filled {CACHE}")


@pytest.mark.parametrize("profile, python", CHECKED)
def test_lock_resolves_on_pypi_for_the_image_platform(profile, python, pypi_reachable):
    facts, reqs = _requirements(profile)
    platform = dict(facts["platform"], python=python, abi="cp" + python.replace(".", ""))
    if python == "3.7":
        platform["abi"] = "cp37m"
    sdist_only = {profiles.normalize(n) for n in facts["sdist_only"]}
    excluded = {profiles.normalize(n) for n in facts["not_on_pypi"]}
    with ThreadPoolExecutor(max_workers=8) as pool:
        files = dict(zip(reqs, pool.map(lambda r: project_files(r[0]), reqs)))
    problems = []
    for name, version in reqs:
        key = profiles.normalize(name)
        assert key not in excluded, f"{name} is both locked and listed as not on PyPI"
        ok, what = installable(files[(name, version)], name, version, platform, key in sdist_only)
        if not ok:
            problems.append(
                f"{name}=={version}: nothing for Python {platform['python']} "
                f"glibc {platform['glibc']} among {_few(what)}"
            )
    assert not problems, f"{profile} lock does not resolve on PyPI:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("profile", profiles.profile_names())
def test_declared_source_only_packages_are_locked(profile):
    facts, reqs = _requirements(profile)
    locked = {profiles.normalize(n) for n, _ in reqs}
    stale = [n for n in facts["sdist_only"] if profiles.normalize(n) not in locked]
    assert not stale, f"docker/profiles.json {profile}.sdist_only names unlocked packages: {stale}"


def test_packages_not_on_pypi_are_the_base_images_torch_and_torchvision():
    """Listed, not silent: what the PyPI check leaves out is torch and torchvision of a profile
    that takes them from its base image (the paper's: the base image is PyTorch's own at the
    pinned torch), and nothing the profile installs from PyPI."""
    for profile in profiles.profile_names():
        facts, reqs = _requirements(profile)
        excluded = {profiles.normalize(n) for n in facts["not_on_pypi"]}
        from_base = set()
        if facts["torch_from"] == "base_image":
            from_base = {"torch", "torchvision"}
            assert facts["pins"]["torch"] in facts["base_image"], profile
        assert excluded == from_base, profile
        assert not excluded & {profiles.normalize(n) for n, _ in reqs}, profile
        for package, why in facts["not_on_pypi"].items():
            assert "base image" in why, (profile, package)
    assert profiles.profile("paper")["torch_from"] == "base_image"


def test_target_tags_follow_glibc():
    modern = target_tags({"python": "3.11", "abi": "cp311", "glibc": "2.35", "arch": "x86_64"})
    assert ptags.Tag("cp311", "cp311", "manylinux_2_28_x86_64") in modern
    assert ptags.Tag("py3", "none", "any") in modern
    paper = target_tags({"python": "3.7", "abi": "cp37m", "glibc": "2.27", "arch": "x86_64"})
    assert ptags.Tag("cp37", "cp37m", "manylinux2014_x86_64") in paper
    assert ptags.Tag("cp37", "cp37m", "manylinux_2_28_x86_64") not in paper


def test_installable_honours_requires_python():
    files = [
        {"filename": "demo-1.0-py3-none-any.whl", "requires-python": ">=3.8"},
        {"filename": "demo-1.0.tar.gz", "requires-python": ">=3.8"},
    ]
    paper = {"python": "3.7", "abi": "cp37m", "glibc": "2.27", "arch": "x86_64"}
    assert not installable(files, "demo", "1.0", paper, sdist_ok=True)[0]
    modern = dict(paper, python="3.11", abi="cp311")
    assert installable(files, "demo", "1.0", modern, sdist_ok=False) == (
        True,
        "demo-1.0-py3-none-any.whl",
    )


def test_cache_is_ignored_by_git():
    assert "/.cache/" in (REPO / ".gitignore").read_text().split()
    assert Path(CACHE).relative_to(REPO).parts[0] == ".cache"
