#!/usr/bin/env python3
"""Fail the image build unless the installed stack is exactly the profile's pinned one.

pip with --no-deps installs what it is told; this checks what actually got imported: a final
CPython release of the pinned major.minor, torch/torchvision at the pinned versions and CUDA
build (and, where the profile records them, the GPU architectures torch was compiled for),
transformers. Prints the stack on one line. Stdlib only, Python 3.7+:

    python3 docker/verify_stack.py PROFILE [--torch-stand-in]

--torch-stand-in: torch is not the profile's own build but stands in for it (the paper
profile's check without its base image, on PyPI's torch); its CUDA build is not checked.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import profiles  # noqa: E402


def base_version(version):
    """'2.14.1+cu130' -> '2.14.1'."""
    return str(version).split("+", 1)[0]


def installed():
    import torch
    import torchvision
    import transformers

    return {
        "python": "{}.{}".format(*sys.version_info[:2]),
        "python_full": "{}.{}.{}".format(*sys.version_info[:3]),
        "python_release": sys.version_info.releaselevel,
        "torch": base_version(torch.__version__),
        "torchvision": base_version(torchvision.__version__),
        "cuda": torch.version.cuda,
        "cuda_arches": torch.cuda.get_arch_list() if torch.version.cuda else [],
        "transformers": transformers.__version__,
    }


def check(facts, found, torch_stand_in=False):
    """The differences between the profile's pins and what is installed, as sentences."""
    pins = facts["pins"]
    expected = {
        "python": pins["python"],
        "torch": pins["torch"],
        "torchvision": pins["torchvision"],
        "transformers": profiles.transformers_version(),
    }
    problems = [
        f"{name}: expected {want}, found {found.get(name)}"
        for name, want in expected.items()
        if found.get(name) != want
    ]
    if found.get("python_release") != "final":
        problems.append(
            f"python: {found.get('python_full')} is a {found.get('python_release')} release,"
            " not a final one"
        )
    if not torch_stand_in:
        if found.get("cuda") != pins["cuda"]:
            problems.append(
                f"torch CUDA: expected a CUDA {pins['cuda']} build, "
                f"found {found.get('cuda') or 'a CPU build'}"
            )
        arches = facts.get("cuda_arches")
        if arches and found.get("cuda_arches") != arches:
            problems.append(
                f"torch GPU architectures: expected {arches}, found {found.get('cuda_arches')}"
            )
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", choices=profiles.profile_names())
    parser.add_argument("--torch-stand-in", action="store_true")
    args = parser.parse_args(argv)
    try:
        found = installed()
    except ImportError as e:
        print(f"the installed stack does not import: {e}", file=sys.stderr)
        return 1
    problems = check(profiles.profile(args.profile), found, args.torch_stand_in)
    if problems:
        print(
            "the installed stack is not the pinned one:\n  " + "\n  ".join(problems),
            file=sys.stderr,
        )
        return 1
    print(
        " ".join(
            f"{k}={','.join(v) if isinstance(v, list) else v}" for k, v in sorted(found.items())
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
