#!/usr/bin/env python3
"""What differs between the container engines the kit drives: Docker, Podman and Buildah.

Stdlib only, Python 3.7+; docker/docker.mk calls it:

    python3 docker/engine.py name DOCKER            # docker | podman | buildah, or exit 2
    python3 docker/engine.py run-flags DOCKER GPUS  # user and GPU flags of `DOCKER run`
    python3 docker/engine.py check DOCKER           # installed, and Docker's daemon answers
    python3 docker/engine.py gpu-runtime DOCKER GPUS [GOAL...]  # the host can give GPUS
    python3 docker/engine.py stage-inputs DOCKER DEST MMF_FROM BUILD_CA  # '' when unset
    python3 docker/engine.py standin-base DOCKER REF  # image-check's base, made once

GPUS is what `docker run --gpus` takes: `all`, a count, or `device=0,1` (quotes allowed); empty
means no GPU. Docker gets it as it is. Podman has no --gpus: it reaches NVIDIA GPUs through CDI
(`--device nvidia.com/gpu=all`, or one `--device nvidia.com/gpu=N` per GPU), and a rootless
Podman maps the caller's uid into the container only with `--userns=keep-id`, without which
files written to the volumes would belong to a subordinate uid on the host.

A refusal is one line on stderr starting with `make:` (make's targets are what the user ran):
exit 2 for a value the kit does not take, 1 for what the host lacks.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ENGINES = ("docker", "podman", "buildah")
DOCKER_DIR = Path(__file__).resolve().parent
# Where the NVIDIA Container Toolkit writes the CDI specs Podman reads.
CDI_DIRS = ("/etc/cdi", "/var/run/cdi")
# How each engine that builds the stand-in base asks whether an image exists.
IMAGE_EXISTS = {"podman": ["image", "exists"], "buildah": ["inspect", "--type", "image"]}


class EngineError(Exception):
    """A refusal; `code` is the exit status (2: a value the kit does not take, 1: the host)."""

    def __init__(self, message, code=2):
        super().__init__(message)
        self.code = code


def name(command):
    """The engine a DOCKER value names (a path or a wrapper's name ending in the engine's)."""
    words = command.split()
    base = Path(words[0]).name if words else ""
    for engine in ENGINES:
        if base == engine or base.endswith("-" + engine):
            return engine
    raise EngineError(
        f"DOCKER={command!r}: expected docker, podman or buildah (or a path to one of them)"
    )


def gpu_devices(gpus):
    """GPUS as a list of device names for CDI: ['all'], ['0', '1'], or [] for no GPU."""
    value = gpus.strip().strip("'\"").strip()
    if not value:
        return []
    if value == "all":
        return ["all"]
    if re.fullmatch(r"[0-9]+", value):
        return [str(i) for i in range(int(value))]
    m = re.fullmatch(r"device=([0-9A-Za-z-]+(?:,[0-9A-Za-z-]+)*)", value)
    if m:
        return m.group(1).split(",")
    raise EngineError(f"GPUS={gpus!r}: expected all, a count, or device=ID[,ID...]")


def run_flags(command, gpus, uid=None, gid=None):
    """The user and GPU flags of `<engine> run` for the caller."""
    engine = name(command)
    if engine == "buildah":
        raise EngineError(
            "buildah builds images but does not run them: run the image with podman, which"
            " shares buildah's image storage (DOCKER=podman)"
        )
    uid = os.getuid() if uid is None else uid
    gid = os.getgid() if gid is None else gid
    flags = [f"--user {uid}:{gid}"]
    if engine == "podman" and uid != 0:
        flags.append("--userns=keep-id")
    if engine == "docker":
        devices = gpu_devices(gpus)
        if devices == ["all"] or (devices and re.fullmatch(r"[0-9]+", gpus.strip())):
            flags.append(f"--gpus {gpus.strip()}")
        elif devices:
            # Docker parses --gpus as CSV: a device list needs its own double quotes.
            flags.append(f"--gpus '\"device={','.join(devices)}\"'")
    else:
        flags += [f"--device nvidia.com/gpu={d}" for d in gpu_devices(gpus)]
    return flags


def _run(argv):
    """(exit status, stdout) of a command whose stderr is not the user's business; 127 when it
    cannot be started."""
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    except OSError:
        return 127, ""
    return proc.returncode, proc.stdout.decode(errors="replace")


def _user():
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return str(os.getuid())


def check(command):
    """The engine is installed and answers; Docker needs its daemon, podman and buildah none."""
    engine = name(command)
    words = command.split()
    if not shutil.which(words[0]):
        raise EngineError(
            f"'{command}' not found. Install Docker Engine (https://docs.docker.com/engine/install/),"
            " or Podman (DOCKER=podman), or use Apptainer/Singularity as docs/image.md shows.",
            code=1,
        )
    if engine == "docker" and _run([*words, "info"])[0] != 0:
        raise EngineError(
            f"'{command} info' failed: the Docker daemon is not running or not reachable."
            " Start it (sudo systemctl start docker) and make sure your user may use it"
            f" (sudo usermod -aG docker {_user()}, then log in again).",
            code=1,
        )
    return engine


def _has_cdi_spec():
    """An NVIDIA CDI spec, as `nvidia-ctk cdi list` shows it or as a file where specs live."""
    if "nvidia.com/gpu=" in _run(["nvidia-ctk", "cdi", "list"])[1]:
        return True
    return any(list(Path(d).glob("*nvidia*")) for d in CDI_DIRS if Path(d).is_dir())


def _has_docker_runtime(command):
    """Docker's NVIDIA runtime: named by `docker info`, or the toolkit's hook or CLI installed."""
    if "nvidia" in _run([*command.split(), "info"])[1].lower():
        return True
    return bool(shutil.which("nvidia-container-runtime-hook") or shutil.which("nvidia-ctk"))


def gpu_runtime(command, gpus, goals=()):
    """With GPUS set: the host has an NVIDIA driver and the engine a way to NVIDIA GPUs."""
    if not gpus.strip():
        return
    without = f"or run without GPUs: GPUS= make {' '.join(goals)}"
    status, listed = _run(["nvidia-smi", "-L"]) if shutil.which("nvidia-smi") else (127, "")
    if status != 0:
        raise EngineError(
            "no NVIDIA GPU or driver on this host (nvidia-smi -L failed). Install the"
            f" NVIDIA driver, {without}",
            code=1,
        )
    _check_gpu_count(gpus, sum(1 for line in listed.splitlines() if line.startswith("GPU ")))
    if name(command) == "podman":
        if not _has_cdi_spec():
            raise EngineError(
                "Podman finds NVIDIA GPUs through CDI, and no NVIDIA CDI spec was found."
                " Install the NVIDIA Container Toolkit and run"
                " 'sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml';"
                f" {without}",
                code=1,
            )
    elif not _has_docker_runtime(command):
        raise EngineError(
            "Docker has no NVIDIA GPU runtime. Install the NVIDIA Container Toolkit"
            " (https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/install-guide.html),"
            " run 'sudo nvidia-ctk runtime configure --runtime=docker' and restart Docker;"
            f" {without}",
            code=1,
        )


def _check_gpu_count(gpus, have):
    """GPUS asks for no more GPUs, and no higher index, than the `have` the host lists; a run
    would otherwise stop inside MMF's spawned processes (or the engine), far from the cause."""
    devices = gpu_devices(gpus)
    if devices == ["all"]:
        return
    value = gpus.strip().strip("'\"").strip()
    if re.fullmatch(r"[0-9]+", value):
        if int(value) > have:
            raise EngineError(
                f"GPUS={value}, but nvidia-smi -L lists {have} GPUs on this host; "
                f"ask for at most {have}",
                code=1,
            )
        return
    beyond = [d for d in devices if d.isdigit() and int(d) >= have]
    if beyond:
        raise EngineError(
            f"GPUS={value}: no GPU {beyond[0]} on this host (nvidia-smi -L lists {have})",
            code=1,
        )


def _remove(path):
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(str(path))
    elif path.exists() or path.is_symlink():
        path.unlink()


def stage_inputs(command, dest, mmf_from="", build_ca=""):
    """MMF_FROM and BUILD_CA copied into dest, the build's one mount (as <name> and ca.crt);
    dest is emptied first, and left absent when neither is given. Docker's build cannot mount
    host paths, so with docker they are refused."""
    dest = Path(dest)
    _remove(dest)
    if not (mmf_from or build_ca):
        return
    if name(command) == "docker":
        raise EngineError(
            "MMF_FROM and BUILD_CA are mounted into the build, which docker build cannot do:"
            " use DOCKER=podman or DOCKER=buildah, or leave them unset (the build then clones"
            " MMF from its public repository)"
        )
    for given in (mmf_from, build_ca):
        if given and not os.path.exists(given):
            raise EngineError(f"{given} (MMF_FROM or BUILD_CA) does not exist")
    dest.mkdir(parents=True)
    if mmf_from:
        # The build argument names it by this base name (docker.mk's MMF_REPOSITORY).
        source = os.path.abspath(mmf_from)
        target = dest / os.path.basename(source)
        if os.path.isdir(source):
            shutil.copytree(source, str(target), symlinks=True)
        else:
            shutil.copy(source, str(target))
    if build_ca:
        shutil.copy(build_ca, str(dest / "ca.crt"))


def standin_base(command, ref):
    """image-check's stand-in base: said present when the engine has REF, else made by
    docker/standin_base.sh. Returns the exit status."""
    engine = name(command)
    if engine not in IMAGE_EXISTS:
        raise EngineError(
            "the stand-in base is built with podman or buildah (DOCKER=podman or DOCKER=buildah)"
        )
    if _run([*command.split(), *IMAGE_EXISTS[engine], ref])[0] == 0:
        print(f"stand-in base: {ref} (present)", flush=True)
        return 0
    return subprocess.call([str(DOCKER_DIR / "standin_base.sh"), command, ref])


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    command, rest = (args[0], args[1:]) if args else ("", [])
    try:
        if command == "name" and len(rest) == 1:
            print(name(rest[0]))
        elif command == "run-flags" and len(rest) == 2:
            print(" ".join(run_flags(*rest)))
        elif command == "check" and len(rest) == 1:
            check(rest[0])
        elif command == "gpu-runtime" and len(rest) >= 2:
            gpu_runtime(rest[0], rest[1], rest[2:])
        elif command == "stage-inputs" and len(rest) == 4:
            stage_inputs(*rest)
        elif command == "standin-base" and len(rest) == 2:
            return standin_base(*rest)
        else:
            print(__doc__.split("\n\n")[2], file=sys.stderr)
            return 2
    except EngineError as e:
        print(f"make: {e}", file=sys.stderr)
        return e.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
