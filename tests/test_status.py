"""`pekit status` over a results folder of runs in every state (logs from mmf_log_writer)."""

import datetime
import json
import os
import re
import socket
import subprocess
import sys

import pytest

from helpers.mmf_log_writer import training_log
from pekit import cli
from pekit.run import record, status


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def iso(minutes_ago, now=None):
    """A time `minutes_ago` before `now` (by default the test's now: a module runs long after
    it is collected)."""
    now = now or utc_now()
    return (now - datetime.timedelta(minutes=minutes_ago)).isoformat(timespec="seconds")


def dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def make_run(results, mode, state, log=None, attempts=(), pid=None, seed=1):
    folder = results / "runs" / "hmd" / "visual_bert" / mode / f"seed{seed}"
    folder.mkdir(parents=True)
    rec = record.RunRecord(
        run={"dataset": "hmd", "model": "visual_bert", "mode": mode, "seed": seed},
        status=state,
        attempts=list(attempts),
        command=["mmf_run", "training.max_updates=22000", "training.max_updates=2000"],
        pid=pid,
        host=socket.gethostname(),
    )
    rec.save(folder)
    if log is not None:
        (folder / "train.log").write_text(log)
    return folder


@pytest.fixture
def results(tmp_path):
    results = tmp_path / "results"
    make_run(
        results,
        "fc",
        record.FINISHED,
        training_log(max_updates=2000),
        attempts=[{"start": iso(120), "end": iso(30)}],
    )
    make_run(
        results,
        "pe",
        record.FAILED,
        training_log(max_updates=2000, stop_at=1500),
        attempts=[{"start": iso(60), "end": iso(55)}, {"start": iso(50), "end": iso(45)}],
    )
    # Its runner died without a word: interrupted.
    make_run(
        results,
        "full",
        record.RUNNING,
        training_log(max_updates=2000, stop_at=700),
        attempts=[{"start": iso(20)}],
        pid=dead_pid(),
    )
    # Run by this very process: running, 1,200 of 2,000 updates at 5 updates/s.
    make_run(
        results,
        "lora",
        record.RUNNING,
        training_log(max_updates=2000, stop_at=1200),
        attempts=[{"start": iso(10)}],
        pid=os.getpid(),
    )
    broken = make_run(results, "bitfit", record.FINISHED)
    (broken / record.RECORD).write_text("{not json")
    (results / "runs" / "hmd" / "visual_bert" / "fc" / "seed2").mkdir()
    return results


def test_status_lists_every_run_with_its_progress(results, capsys):
    assert cli.main(["status", "--results", str(results)]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {x.split()[0]: " ".join(x.split()[1:]) for x in lines}
    by_key = dict(rows)
    key = "hmd/visual_bert/{}/seed{}".format
    assert by_key[key("fc", 1)] == (
        "finished update 2000/2000 best val AUROC 0.7463 @2000 wall 1.5 h"
    )
    assert by_key[key("fc", 2)] == "new update n/a best val AUROC n/a wall n/a"
    assert by_key[key("pe", 1)] == (
        "failed update 1500/2000 best val AUROC 0.7229 @1000 wall 10.0 min"
    )
    # Its attempt has no end: the wall time is the training time MMF logged.
    assert by_key[key("full", 1)] == "interrupted update 700/2000 best val AUROC n/a wall 2.4 min"
    # Started 10 minutes before the test looked (the clock moves on while it runs).
    assert re.fullmatch(
        r"running update 1200/2000 best val AUROC 0\.7229 @1000 left 2\.7 min wall 10\.[0-2] min",
        by_key[key("lora", 1)],
    ), by_key[key("lora", 1)]
    assert by_key[key("bitfit", 1)].startswith("error ")
    assert "not valid JSON" in by_key[key("bitfit", 1)]
    assert len(lines) == 6
    # Columns line up: every state starts where the longest key ends.
    assert len({x.index(x.split()[1], len(x.split()[0])) for x in lines}) == 1


def test_status_as_json(results, capsys):
    assert cli.main(["status", "--results", str(results), "--json"]) == 0
    rows = {r["key"]: r for r in json.loads(capsys.readouterr().out)}
    running = rows["hmd/visual_bert/lora/seed1"]
    assert running["state"] == "running"
    assert (running["update"], running["max_updates"]) == (1200, 2000)
    assert running["updates_per_s"] == 5.0 and running["eta_s"] == 160
    assert (running["best_val_auroc"], running["best_update"]) == (0.7229, 1000)
    assert 595 <= running["wall_time_s"] <= 700
    assert rows["hmd/visual_bert/full/seed1"]["eta_s"] is None
    assert rows["hmd/visual_bert/fc/seed1"]["finished"] is True
    assert rows["hmd/visual_bert/bitfit/seed1"]["state"] == "error"
    assert "\n" not in rows["hmd/visual_bert/bitfit/seed1"]["error"]


def test_status_without_runs(tmp_path, capsys):
    assert cli.main(["status", "--results", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "no runs under" in captured.err
    assert cli.main(["status", "--results", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_wall_time_counts_only_attempts_that_tell():
    now = utc_now()
    rec = record.RunRecord(
        run={},
        attempts=[
            {"start": iso(30, now), "end": iso(20, now)},
            {"start": iso(15, now)},  # its runner died
            {"start": "garbled", "end": iso(1, now)},
        ],
    )
    assert status.wall_time(rec, record.INTERRUPTED, now) == 600
    assert status.wall_time(rec, record.RUNNING, now) == 600
    rec.attempts.append({"start": iso(5, now)})
    assert status.wall_time(rec, record.RUNNING, now) == 900
    assert status.wall_time(record.RunRecord(run={}), record.NEW, now) is None
