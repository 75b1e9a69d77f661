"""Fault injection: `pekit` killed (SIGKILL) part-way through its writes, and the scratch names
such a kill may leave behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

KILL_AT = r"""
import os, shutil, signal, sys
from pekit import cli

# Die (SIGKILL) at the n-th call of any of these: every write, rename, link and removal.
n, calls = int(os.environ["PEKIT_KILL_AT"]), [0]
def killer(real):
    def call(*args, **kwargs):
        calls[0] += 1
        if calls[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    return call
for name in ("replace", "rename", "fsync", "unlink", "chmod", "symlink", "mkdir", "rmdir"):
    setattr(os, name, killer(getattr(os, name)))
shutil.rmtree = killer(shutil.rmtree)
sys.exit(cli.main(sys.argv[1:]))
"""


def pekit_killed_at(step, *argv, env=None):
    """Run `pekit ARGV`, killed (SIGKILL) at its `step`-th write, rename, link or removal;
    returns (returncode, output). -SIGKILL means it was killed; otherwise it finished."""
    proc = subprocess.run(
        [sys.executable, "-c", KILL_AT, *map(str, argv)],
        env=dict(env or os.environ, PEKIT_KILL_AT=str(step)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    return proc.returncode, proc.stdout.decode(errors="replace")


def kit_scratch(root):
    """The kit's scratch names left under `root`: staged files, temporaries, journals."""
    return sorted(
        str(p)
        for p in Path(root).rglob("*")
        if ".pekit-" in p.name or p.name.startswith(".hmd-unzip-")
    )
