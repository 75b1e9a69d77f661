"""The session's finished runs: `pekit demo`'s folder, built once for every test that reads it.

The pipeline drives the `pekit` command line as a user would, offline, on the demo's synthetic
worlds (Hateful Memes and MMHS150K), with the `smoke` training settings (4 updates, validation
and checkpoint every 2):

- HMD PE is started with the demo's own `pekit run` arguments and stopped after its first
  validation and checkpoint (SIGTERM to its process group);
- `pekit demo` then resumes it from current.ckpt and finishes it, trains HMD FC and Full-FT and
  MMH FC and PE, scores each on its test splits (the world's test_unseen has no labels, so the
  runner skips it), has MMF write each run's per-example predictions on its validation and test
  splits (test_unseen's too), writes the report and exports PE's adapters, all kept in its folder;
- an HMD FC run with a second seed fails inside MMF (an early-stopping criterion no metric
  provides) after it has logged parameters and losses;
- `pekit report` runs on the demo's folder.

Training full-size VisualBERT is most of the suite's time, so each of these runs is trained once
per session: test_smoke.py checks the pipeline, test_mmf_train.py and test_mmh_plugin.py what
MMF did in them, test_study.py reuses the finished HMD runs. A test that reads the folder must
not write into its runs (the ones test_smoke.py runs on it write only what a user's later
commands would: status, logs, another report, exports elsewhere).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pekit.run import record
from pekit.run.spec import LOG
from pekit.workflows import demo

MODEL = demo.MODEL
RUN_MODES = demo.RUNS  # the modes run per dataset: the demo's
MAX_UPDATES = 4  # the smoke settings
# Hang guards only.
HANG_TIMEOUT_S = 1800
INTERRUPT_WAIT_S = 600
# MMF's summary of the first validation; the checkpoints of update 2 are on disk by then.
FIRST_VALIDATION = re.compile(f"progress: 2/{MAX_UPDATES}, val/")
FAILING = "training.early_stop.criteria=hateful_memes/no_such_metric"
# The runs' weights: 0.45-1.3 GB each; `make demo` keeps them, the tests do not.
CHECKPOINTS = ("*.ckpt", "*.pth")


class FinishedRuns:
    """The worlds, the results folder and what each stage of the pipeline returned."""

    def __init__(self, root, env_of):
        """`env_of(world)`: the environment of a `pekit` subprocess that trains in `world`."""
        self.root = root
        self.demo = demo.Demo(root / "results")
        self.world, self.mmh_data = self.demo.worlds()
        self.results = self.demo.results
        self.env = env_of(self.world)
        self.outputs = {}
        self.timings = {}

    def run_args(self, dataset, modes, *extra, seeds="1"):
        argv = ["run", *self.demo.run_argv(dataset, modes, seeds)]
        for item in extra:
            argv += ["--override", item]
        return argv

    def command(self, argv):
        return [sys.executable, "-m", "pekit", *argv]

    def pekit(self, name, argv):
        """Run `pekit ARGV`; returns (exit status, output) and records both under `name`."""
        start = time.monotonic()
        proc = subprocess.run(
            self.command(argv),
            env=self.env,
            cwd=str(self.root),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=HANG_TIMEOUT_S,
        )
        self.timings[name] = time.monotonic() - start
        out = proc.stdout.decode("utf-8", "replace")
        self.outputs[name] = (proc.returncode, out)
        return proc.returncode, out

    def run_dir(self, dataset, mode, seed=1):
        return self.results / "runs" / dataset / MODEL / mode / f"seed{seed}"

    def run_record(self, dataset, mode, seed=1):
        return json.loads((self.run_dir(dataset, mode, seed) / record.RECORD).read_text())

    def interrupt_after_first_validation(self, argv):
        """Start `pekit ARGV`, stop its process group once update 2 is validated and saved."""
        log = self.run_dir("hmd", "pe") / LOG
        start = time.monotonic()
        with open(self.root / "interrupted.out", "wb") as out:
            proc = subprocess.Popen(
                self.command(argv),
                env=self.env,
                cwd=str(self.root),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                while not (
                    log.is_file() and FIRST_VALIDATION.search(log.read_text("utf-8", "replace"))
                ):
                    if proc.poll() is not None:
                        pytest.fail(
                            f"pekit run ended ({proc.returncode}) before update 2 was validated"
                        )
                    if time.monotonic() - start > INTERRUPT_WAIT_S:
                        pytest.fail(
                            f"no validation at update 2 in {log} after {INTERRUPT_WAIT_S} s"
                        )
                    time.sleep(0.2)
                # What a scheduler's preemption does: SIGTERM to the runner and MMF alike.
                os.killpg(proc.pid, signal.SIGTERM)
                code = proc.wait(timeout=120)
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        self.timings["hmd pe interrupted"] = time.monotonic() - start
        return code

    def build(self):
        hmd_pe = self.run_args("hmd", "pe")
        self.interrupted_exit = self.interrupt_after_first_validation(hmd_pe)
        self.interrupted_record = self.run_record("hmd", "pe")
        self.interrupted_log = (self.run_dir("hmd", "pe") / LOG).read_text("utf-8", "replace")
        self.pekit("demo", ["demo", "--results", str(self.results)])
        self.pekit("hmd fc failing", self.run_args("hmd", "fc", FAILING, seeds="2"))
        self.pekit("report", ["report", "--results", str(self.results)])

    def copy_run(self, dataset, mode, results):
        """A copy of a finished run's folder in another results folder, without its weights:
        the copy's records and logs are its own, so nothing done there reaches this folder."""
        source = self.run_dir(dataset, mode)
        dest = Path(results) / source.relative_to(self.results)
        shutil.copytree(str(source), str(dest), ignore=shutil.ignore_patterns(*CHECKPOINTS))
        return dest

    def delete_checkpoints(self):
        for pattern in CHECKPOINTS:
            for path in list(self.root.rglob(pattern)):
                path.unlink()
