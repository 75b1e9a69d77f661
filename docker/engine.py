#!/usr/bin/env python3
"""What differs between the container engines the kit drives: Docker, Podman and Buildah.

Stdlib only, Python 3.7+; docker/docker.mk calls it:

    python3 docker/engine.py name DOCKER          # docker | podman | buildah, or exit 2
    python3 docker/engine.py run-flags DOCKER GPUS  # user and GPU flags of `DOCKER run`

GPUS is what `docker run --gpus` takes: `all`, a count, or `device=0,1` (quotes allowed); empty
means no GPU. Docker gets it as it is. Podman has no --gpus: it reaches NVIDIA GPUs through CDI
(`--device nvidia.com/gpu=all`, or one `--device nvidia.com/gpu=N` per GPU), and a rootless
Podman maps the caller's uid into the container only with `--userns=keep-id`, without which
files written to the volumes would belong to a subordinate uid on the host.
"""

import os
import re
import sys
from pathlib import Path

ENGINES = ("docker", "podman", "buildah")


class EngineError(Exception):
    pass


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


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    try:
        if len(args) == 2 and args[0] == "name":
            print(name(args[1]))
        elif len(args) == 3 and args[0] == "run-flags":
            print(" ".join(run_flags(args[1], args[2])))
        else:
            print("\n".join(__doc__.strip().splitlines()[3:5]), file=sys.stderr)
            return 2
    except EngineError as e:
        print(f"make: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
