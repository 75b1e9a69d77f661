"""A SLURM allocation faked on one machine: stand-ins for `srun` and `scontrol` on PATH.

`srun --nodes=N --ntasks-per-node=1 [--kill-on-bad-exit=1] CMD...` starts CMD once per "node",
each a local process with the variables srun gives a step's task (SLURM_STEP_NODELIST,
SLURM_NNODES, SLURM_NTASKS_PER_NODE, SLURM_NODEID, SLURM_PROCID, SLURM_LOCALID, ...), forwards
SIGINT and SIGTERM to them, stops the others when one fails (--kill-on-bad-exit=1), and exits
with 0 when every task did, 1 otherwise. `scontrol show hostnames LIST` names every node
`localhost`. Each call is appended to the file `calls` as one JSON line, so that a test can see
what MMF asked SLURM.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

NODELIST_ENV = "SLURM_JOB_NODELIST"

SRUN = r"""
import json, os, signal, subprocess, sys, time

args, opts = sys.argv[1:], {}
while args and args[0].startswith("--"):
    key, _, value = args.pop(0)[2:].partition("=")
    opts[key] = value
with open(os.environ["FAKE_SLURM_CALLS"], "a") as calls:
    calls.write(json.dumps({"srun": sys.argv[1:]}) + "\n")
if opts.get("ntasks-per-node", "1") != "1" or not args:
    sys.exit("fake srun: expected --ntasks-per-node=1 and a command")
nodes = int(opts.get("nodes", "1"))
nodelist = os.environ["SLURM_JOB_NODELIST"]
tasks = []
for node in range(nodes):
    env = dict(
        os.environ,
        SLURM_STEP_NODELIST=nodelist,
        SLURM_NNODES=str(nodes),
        SLURM_NTASKS=str(nodes),
        SLURM_NTASKS_PER_NODE="1",
        SLURM_NODEID=str(node),
        SLURM_PROCID=str(node),
        SLURM_LOCALID="0",
    )
    tasks.append(subprocess.Popen(args, env=env))


def forward(signum, frame):
    for task in tasks:
        if task.poll() is None:
            task.send_signal(signum)


signal.signal(signal.SIGINT, forward)
signal.signal(signal.SIGTERM, forward)
while any(task.poll() is None for task in tasks):
    if opts.get("kill-on-bad-exit") == "1" and any(task.poll() for task in tasks):
        for task in tasks:
            if task.poll() is None:
                task.kill()
    time.sleep(0.1)
sys.exit(1 if any(task.returncode for task in tasks) else 0)
"""

SCONTROL = r"""
import json, os, sys

with open(os.environ["FAKE_SLURM_CALLS"], "a") as calls:
    calls.write(json.dumps({"scontrol": sys.argv[1:]}) + "\n")
if sys.argv[1:3] != ["show", "hostnames"] or len(sys.argv) != 4:
    sys.exit("fake scontrol: only `scontrol show hostnames LIST`")
print("\n".join(["localhost"] * int(os.environ["SLURM_NNODES"])))
"""


class FakeSlurm:
    """The stand-ins in `root`/bin, and the environment of a job in an allocation of `nodes`."""

    def __init__(self, root, nodes):
        self.root = Path(root)
        self.bin = self.root / "bin"
        self.calls = self.root / "calls.jsonl"
        self.nodes = nodes
        self.bin.mkdir(parents=True, exist_ok=True)
        for name, body in (("srun", SRUN), ("scontrol", SCONTROL)):
            path = self.bin / name
            path.write_text(f"#!{sys.executable}\n{body}")
            path.chmod(0o755)

    def env(self, base):
        """`base` as a batch script of the allocation sees it, with the stand-ins first on PATH."""
        env = dict(base)
        env["PATH"] = os.pathsep.join([str(self.bin), env.get("PATH", os.defpath)])
        env.update(
            FAKE_SLURM_CALLS=str(self.calls),
            SLURM_JOB_ID="4242",
            SLURM_JOB_NUM_NODES=str(self.nodes),
            **{NODELIST_ENV: f"node[1-{self.nodes}]"},
        )
        return env

    def read_calls(self):
        if not self.calls.is_file():
            return []
        return [json.loads(line) for line in self.calls.read_text().splitlines() if line]
