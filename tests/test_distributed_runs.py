"""What a multi-process run writes, through `pekit run` as a user starts it, on the CPU with gloo
(PEKIT_DISTRIBUTED_CPU=1: the runner shows MMF no GPU and `--gpus N` runs N processes).

- Two processes on one node: rank 1 is killed (SIGKILL) once update 2 is validated and saved;
  the run fails, and the next `pekit run` resumes it from its checkpoint and finishes it. One
  log (rank 0's), one checkpoint folder, one run record saying two processes ran, test scores
  and predictions of one process, and the report shows the run like any other.
- Two nodes of one process each under a SLURM allocation faked on this machine (stand-ins for
  srun and scontrol: tests/helpers/slurm.py): `pekit run --nodes 2` starts MMF through srun,
  MMF a34bc2d's own SLURM start-up finds the rendezvous, and the run finishes; the srun line is
  the one docs/reproduce.md gives.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.env import pekit_env
from helpers.slurm import FakeSlurm
from pekit.core import location
from pekit.facts.vocabulary import DATASETS
from pekit.run import command, devices, record
from pekit.run.mmf_log import parse_file
from pekit.run.spec import LOG, SAVE_DIR
from pekit.workflows import synthetic as mmf_world

pytestmark = [pytest.mark.mmf, pytest.mark.slow]

MODEL = "visual_bert"
UPDATES = 6  # smoke settings validate and checkpoint every 2 updates
FIRST_VALIDATION = f"progress: 2/{UPDATES}, val/"
# Hang guards only.
HANG_TIMEOUT_S = 1800
WAIT_S = 900


@pytest.fixture(scope="module")
def world(mmf_installed, tmp_path_factory):
    return mmf_world.build_world(tmp_path_factory.mktemp("distributed_runs"))


def run_argv(world, results, *options):
    argv = ["run", "--dataset", "hmd", "--models", MODEL, "--modes", "fc", "--seeds", "1"]
    argv += ["--settings", "smoke", "--results", str(results), *options]
    argv += ["--data-dir", str(world.data_dir), "--config", mmf_world.CONFIGS[MODEL]]
    for item in mmf_world.runner_overrides(world, MODEL):
        argv += ["--override", item]
    return argv


def environment(world):
    env = pekit_env(world)
    env[devices.ENV_CPU] = "1"
    return env


def pekit(argv, env, cwd):
    proc = subprocess.run(
        [sys.executable, "-m", "pekit", *argv],
        env=env,
        cwd=str(cwd),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=HANG_TIMEOUT_S,
    )
    return proc.returncode, proc.stdout.decode("utf-8", "replace")


def run_dir(results):
    return Path(results) / "runs" / "hmd" / MODEL / "fc" / "seed1"


def processes_holding(suffix, under):
    """Pids of the processes with a file open whose path is under `under` and ends in `suffix`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            links = [os.readlink(str(fd)) for fd in (proc / "fd").iterdir()]
        except OSError:  # gone meanwhile, or not ours
            continue
        if any(link.startswith(str(under)) and link.endswith(suffix) for link in links):
            found.append(int(proc.name))
    return found


def kill_rank_one_after_first_validation(argv, env, cwd, folder):
    """Start `pekit ARGV`; once update 2 is validated, SIGKILL the process of rank 1 (the one
    holding MMF's rank-1 log open); returns pekit's exit status."""
    log = folder / LOG
    start = time.monotonic()
    with open(Path(cwd) / "killed.out", "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pekit", *argv],
            env=env,
            cwd=str(cwd),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            while not (log.is_file() and FIRST_VALIDATION in log.read_text("utf-8", "replace")):
                if proc.poll() is not None:
                    pytest.fail(f"pekit run ended ({proc.returncode}) before update 2")
                if time.monotonic() - start > WAIT_S:
                    pytest.fail(f"no validation of update 2 in {log} after {WAIT_S} s")
                time.sleep(0.2)
            rank_one = processes_holding(".rank1", folder / SAVE_DIR / "logs")
            assert len(rank_one) == 1, rank_one
            os.kill(rank_one[0], signal.SIGKILL)
            return proc.wait(timeout=WAIT_S)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def test_a_killed_rank_fails_the_run_and_the_next_run_resumes_it(world, tmp_path):
    results = tmp_path / "results"
    env = environment(world)
    argv = run_argv(world, results, "--gpus", "2", "--override", f"training.max_updates={UPDATES}")
    folder = run_dir(results)

    code = kill_rank_one_after_first_validation(argv, env, tmp_path, folder)
    killed = json.loads((folder / record.RECORD).read_text())
    assert code != 0 and killed["status"] == record.FAILED, killed
    first_log = (folder / LOG).read_text("utf-8", "replace")
    assert f"progress: {UPDATES}/{UPDATES}" not in first_log, "the kill came after the end"

    code, out = pekit(argv, env, tmp_path)
    assert code == 0, out[-6000:]
    run = json.loads((folder / record.RECORD).read_text())
    assert run["status"] == record.FINISHED
    assert [a["resume"] for a in run["attempts"]] == [False, True]
    for attempt in run["attempts"]:
        assert (attempt["processes"], attempt["nodes"], attempt["device"]) == (2, 1, "cpu")
        assert "distributed.world_size=2" in attempt["command"]
    assert run["identity"]["gpus"] == 2 and run["identity"]["device"] == "cpu"

    # One log, rank 0's: each update's training line once per attempt, never twice over.
    parsed = parse_file(folder / LOG)
    assert parsed["last_update"] == UPDATES and parsed["finished"]
    assert parsed["loaded_updates"] and parsed["loaded_updates"][0] in (2, 4)
    second = (folder / LOG).read_text("utf-8", "replace")[len(first_log) :]
    resumed_from = parsed["loaded_updates"][0]
    for update in range(resumed_from + 1, UPDATES + 1):
        assert second.count(f"progress: {update}/{UPDATES}, train/") == 1, update
    # One checkpoint folder, written by rank 0.
    save_dir = folder / SAVE_DIR
    assert (save_dir / "best.ckpt").is_file() and (save_dir / "current.ckpt").is_file()
    for path in folder.rglob("*"):
        assert path.suffix != ".ckpt" or save_dir in path.parents, path
        assert "rank1" not in path.name or path.parent == save_dir / "logs", path

    # Scored and predicted by one process: every test and validation example once.
    assert all(run["test"][s]["status"] == record.FINISHED for s in DATASETS["hmd"].test_splits)
    for split, result in run["predictions"].items():
        if result["status"] == record.FINISHED and result["labelled"]:
            rows = (folder / result["file"]).read_text().splitlines()[1:]
            ids = [r.split(",")[0] for r in rows]
            assert len(ids) == len(set(ids)) == result["examples"], split

    code, out = pekit(["report", "--results", str(results)], env, tmp_path)
    assert code == 0, out[-4000:]
    rep = json.loads((results / "report.json").read_text())
    assert [(r["dataset"], r["mode"], r["seed"]) for r in rep["runs"]] == [("hmd", "fc", 1)]
    rows = [r for r in rep["table2"] if r["n"]]
    assert len(rows) == 1 and "2 CPU processes" in rows[0]["settings"], rows
    splits = DATASETS["hmd"].test_splits
    assert sorted(r["split"] for r in rep["test"]) == sorted(splits)
    for split in splits:
        assert "distributed.world_size=1" in run["test"][split]["command"], split


def documented_srun():
    """The srun line docs/reproduce.md gives for a run on 2 nodes, as tokens."""
    text = (location.kit_root() / "docs" / "reproduce.md").read_text(encoding="utf-8")
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith("srun ")]
    assert len(lines) == 1, lines
    return shlex.split(lines[0].rstrip("\\"))


def test_two_nodes_start_through_srun_and_mmfs_slurm_start_up(world, tmp_path):
    results = tmp_path / "results"
    slurm = FakeSlurm(tmp_path / "slurm", nodes=2)
    env = slurm.env(environment(world))
    code, out = pekit(run_argv(world, results, "--nodes", "2", "--no-test"), env, tmp_path)
    folder = run_dir(results)
    assert code == 0, out[-4000:] + (folder / LOG).read_text("utf-8", "replace")[-6000:]

    run = json.loads((folder / record.RECORD).read_text())
    assert run["status"] == record.FINISHED and run["run"]["nodes"] == 2
    attempt = run["attempts"][0]
    assert (attempt["processes"], attempt["nodes"]) == (2, 2)
    cmd = attempt["command"]
    prefix = [command.SRUN[0], "--nodes=2", *command.SRUN[1:]]
    assert cmd[: len(prefix)] == prefix
    assert documented_srun()[: len(prefix)] == prefix, "docs/reproduce.md's srun line differs"
    assert "distributed.world_size=2" in cmd
    port = [c.split("=", 1)[1] for c in cmd if c.startswith("distributed.port=")]
    assert len(port) == 1 and int(port[0]) > 0

    # MMF asked SLURM for the node list on each node, and rank 0 listened where it said.
    calls = slurm.read_calls()
    assert [c["srun"] for c in calls if "srun" in c] == [cmd[1:]]
    asked = [c["scontrol"] for c in calls if "scontrol" in c]
    assert asked == [["show", "hostnames", "node[1-2]"]] * 2, calls
    log = (folder / LOG).read_text("utf-8", "replace")
    assert f"tcp://localhost:{port[0]}" in log
    parsed = parse_file(folder / LOG)
    assert parsed["finished"] and parsed["last_update"] == 4
    assert (folder / SAVE_DIR / "best.ckpt").is_file()
