"""The image built for real: `make image-check` builds the modern image with podman or buildah
(on a stand-in Debian 12 base where no registry is reachable) and runs these tests, which work
inside that image as its own non-root user, and build a copy of the kit whose patch no longer
applies. Deselected from `make test` (marker `image`); without a built image they skip.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid

import pytest

from helpers.env import make_env
from pekit.core import location
from pekit.facts import pins

REPO = location.kit_root()
sys.path.insert(0, str(REPO / "docker"))
import engine  # noqa: E402  (docker/engine.py: a script, not part of the kit's package)

IMAGE = os.environ.get("PEKIT_IMAGE", "")
DOCKER = os.environ.get("PEKIT_IMAGE_DOCKER", "")

pytestmark = [
    pytest.mark.image,
    pytest.mark.skipif(
        not (IMAGE and DOCKER),
        reason="no image to test: `make image-check DOCKER=podman|buildah` builds one and runs these",
    ),
]


def in_image(*command, timeout=1800):
    """(returncode, output) of `command` in a fresh container of IMAGE, as the image's user."""
    docker = DOCKER.split()
    if engine.name(DOCKER) == "podman":
        proc = subprocess.run(
            [*docker, "run", "--rm", IMAGE, *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
        )
        return proc.returncode, proc.stdout.decode(errors="replace")
    name = f"pekit-image-check-{uuid.uuid4().hex[:8]}"
    subprocess.run([*docker, "from", "--name", name, IMAGE], check=True, capture_output=True)
    try:
        proc = subprocess.run(
            [*docker, "run", name, "--", *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
        )
        return proc.returncode, proc.stdout.decode(errors="replace")
    finally:
        subprocess.run([*docker, "rm", name], capture_output=True)


def test_the_image_runs_as_its_own_user():
    rc, out = in_image("id", "-u")
    assert rc == 0, out
    assert out.strip().splitlines()[-1] == "1000"


def test_the_stack_in_the_image_is_the_pinned_one():
    rc, out = in_image("python", "/opt/pekit/docker/verify_stack.py", "modern")
    assert rc == 0, out
    cuda = pins.get("profiles.modern.cuda")
    assert f"cuda={cuda}" in out and "python_release=final" in out


def test_the_build_inputs_left_nothing_in_the_image():
    """The CA bundle and MMF bundle were mounted, not copied; PIP_CERT was a build argument."""
    rc, out = in_image(
        "bash",
        "-c",
        "ls -A /run/pekit-build 2>/dev/null; env | grep -c '^PIP_CERT=' || true;"
        " pip config list | grep -ci cert || true",
    )
    assert rc == 0, out
    assert out.split() == ["0", "0"], out


def test_table1_and_the_smoke_pipeline_pass_inside_the_image():
    rc, out = in_image(
        "bash",
        "-c",
        "cd /opt/pekit && PEKIT_REQUIRE_MMF=1 python -m pytest -p no:cacheprovider"
        " -q tests/test_table1_counts.py tests/test_smoke.py",
    )
    summary = out.strip().splitlines()[-1] if out.strip() else ""
    assert rc == 0, out[-6000:]
    assert re.search(r"\d+ passed", summary) and "skipped" not in summary, summary


def _copy_of_the_kit(dest):
    """The kit as a build context sees it: tracked files and untracked ones git does not ignore."""
    files = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=str(REPO),
            check=True,
            capture_output=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, files):
        source = REPO / rel
        if source.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(str(source), str(dest / rel))
    return dest


def _break_first_hunk(diff):
    """Change one context line of the diff's first hunk, so that it no longer applies."""
    lines = diff.read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("@@"))
    i = next(i for i in range(start + 1, len(lines)) if lines[i].startswith(" "))
    lines[i] = " # not the upstream line any more\n"
    diff.write_text("".join(lines))


def test_a_patch_that_no_longer_applies_fails_the_build(tmp_path):
    kit = _copy_of_the_kit(tmp_path / "kit")
    broken = "transformers-4.10.1/pe/transformers/models/bert/modeling_bert.py.diff"
    _break_first_hunk(kit / "patches" / broken)
    tag = f"broken-patch-{uuid.uuid4().hex[:8]}"
    variables = {
        "DOCKER": DOCKER,
        "IMAGE": "pekit-image-check",
        "IMAGE_TAG": tag,
        "BASE_IMAGE": os.environ.get("PEKIT_IMAGE_BASE", ""),
        "MMF_FROM": os.environ.get("PEKIT_IMAGE_MMF_FROM", ""),
        "BUILD_CA": os.environ.get("PEKIT_IMAGE_BUILD_CA", ""),
    }
    proc = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-C",
            str(kit),
            "build",
            "PROFILE=modern",
            *(f"{k}={v}" for k, v in variables.items()),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=1800,
        env=make_env(),
    )
    out = proc.stdout.decode(errors="replace")
    assert proc.returncode != 0, out[-4000:]
    # The kit's refusal, naming the diff, and nothing written ...
    assert "pekit patch:" in out and "modeling_bert.py.diff" in out, out[-4000:]
    assert "nothing written" in out, out[-4000:]
    # ... at the kit's step, before the locked stack (torch) was downloaded, and no image.
    failed = [line for line in out.splitlines() if "building at STEP" in line or "Error:" in line]
    assert failed and "install.sh kit" in failed[-1], failed
    assert f"torch=={pins.get('profiles.modern.torch')}" not in out
    exists = {"podman": ["image", "exists"], "buildah": ["inspect", "--type", "image"]}
    ref = f"pekit-image-check:{tag}"
    check = subprocess.run(
        [*DOCKER.split(), *exists[engine.name(DOCKER)], ref], capture_output=True
    )
    assert check.returncode != 0, f"{ref} was created by a failed build"
