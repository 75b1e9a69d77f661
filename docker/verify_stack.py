#!/usr/bin/env python3
"""Fail the image build unless the installed stack is exactly the pinned one.

pip with --no-deps installs what it is told; this checks what actually got imported: the
Python version, torch/torchvision (the base image's or the CUDA 12 index's build), transformers.
Python 3.7+.
"""

import argparse
import sys


def base_version(version):
    """'2.14.1+cu128' -> '2.14.1'."""
    return str(version).split("+", 1)[0]


def check(expected, found):
    problems = []
    for name in ("python", "torch", "torchvision", "transformers"):
        if found.get(name) != expected[name]:
            problems.append(f"{name}: expected {expected[name]}, found {found.get(name)}")
    return problems


def installed():
    import torch
    import torchvision
    import transformers

    return {
        "python": "{}.{}".format(*sys.version_info[:2]),
        "torch": base_version(torch.__version__),
        "torchvision": base_version(torchvision.__version__),
        "transformers": transformers.__version__,
        "cuda": torch.version.cuda,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("python", "torch", "torchvision", "transformers", "profile"):
        parser.add_argument("--" + name, required=True)
    args = parser.parse_args(argv)
    found = installed()
    problems = check(vars(args), found)
    cuda = found["cuda"] or ""
    if args.profile == "modern" and not cuda.startswith("12."):
        problems.append(f"torch CUDA: expected a CUDA 12 build, found {cuda or 'a CPU build'}")
    if args.profile == "paper" and not cuda.startswith("11."):
        problems.append(f"torch CUDA: expected the base image's CUDA 11 build, found {cuda}")
    if problems:
        print("the installed stack is not the pinned one:\n  " + "\n  ".join(problems),
              file=sys.stderr)  # fmt: skip
        return 1
    print(" ".join(f"{k}={v}" for k, v in sorted(found.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
