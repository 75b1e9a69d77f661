"""`pekit gpu-check`'s budget, device facts, report and error handling, without MMF: the parts
(Table I, training, bench) are fakes here; `make twin-check` runs the real ones on a node twin."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
import types

import pytest
import torch

from pekit.bench import runner as bench_runner
from pekit.commands import gpu_check as gpu_check_command
from pekit.workflows import gpu_check

CUDA = torch.device("cuda")  # a device object only: nothing runs on it


# --- plan_budget --------------------------------------------------------------------------


def test_default_budget_gives_the_gpu_its_200_updates_and_the_bench_its_defaults():
    plan = gpu_check.plan_budget(8.0, 0.0, on_gpu=True)
    assert plan["updates"] == 200 == gpu_check.GPU_UPDATES
    assert plan["parts"] == {"table1": 72.0, "training": 240.0, "bench": 168.0}
    assert plan["enforced"] is True and plan["scaled"] is None
    request = plan["bench"]
    counts, scaled = bench_runner.counts_for(request, CUDA)
    assert counts["updates"] == bench_runner.DEFAULTS["updates"][0]
    assert counts["pipeline_updates"] == bench_runner.DEFAULTS["pipeline_updates"][0]
    assert request.sections == () and not scaled  # every section


def test_half_the_minutes_halves_the_updates_and_the_bench_counts_and_says_so():
    plan = gpu_check.plan_budget(4.0, 0.0, on_gpu=True)
    assert plan["updates"] == 100
    request = plan["bench"]
    assert dict(request.counts) == {"updates": 10, "pipeline_updates": 50}
    assert request.sections and "extract" not in request.sections  # fewer under a small budget
    assert "4-minute budget" in plan["scaled"] and "100 training updates" in plan["scaled"]


def test_more_minutes_scale_up():
    plan = gpu_check.plan_budget(16.0, 0.0, on_gpu=True)
    assert plan["updates"] == 400 and plan["parts"]["training"] == 480.0


def test_a_tiny_budget_never_goes_below_the_floors_on_a_gpu():
    plan = gpu_check.plan_budget(0.05, 0.0, on_gpu=True)
    assert plan["updates"] == gpu_check.MIN_GPU_UPDATES == 10
    request = plan["bench"]
    counts, _ = bench_runner.counts_for(request, CUDA)  # counts the bench accepts
    assert counts["updates"] >= 1 and counts["pipeline_updates"] >= 1
    assert request.sections == ("train",)
    assert "at least 10" in plan["scaled"]


def test_the_cpu_keeps_its_counts_and_its_bench_request_whatever_the_minutes():
    for minutes in (0.5, 8.0, 30.0):
        plan = gpu_check.plan_budget(minutes, 0.0, on_gpu=False)
        assert plan["updates"] == gpu_check.CPU_UPDATES == 4
        assert plan["bench"] == gpu_check.CPU_BENCH
        assert plan["enforced"] is False and "not enforced" in plan["scaled"]
    request = gpu_check.CPU_BENCH
    assert (request.models, request.modes, request.sections) == (
        ("visual_bert",),
        ("fc", "pe"),
        ("train",),
    )


def test_time_spent_before_the_check_reduces_every_part():
    fresh = gpu_check.plan_budget(8.0, 0.0, on_gpu=True)
    late = gpu_check.plan_budget(8.0, 180.0, on_gpu=True)
    assert late["left_s"] == 300.0 and late["before_check_s"] == 180.0
    assert late["parts"] == {"table1": 45.0, "training": 150.0, "bench": 105.0}
    for part in fresh["parts"]:
        assert late["parts"][part] < fresh["parts"][part]
    assert late["updates"] == fresh["updates"]  # the counts follow the minutes, not the clock
    spent = gpu_check.plan_budget(8.0, 600.0, on_gpu=True)
    assert spent["left_s"] == 0.0 and set(spent["parts"].values()) == {0.0}


def test_the_shares_are_the_whole_of_what_is_left():
    assert gpu_check.SHARES == {"table1": 0.15, "training": 0.50, "bench": 0.35}
    assert sum(gpu_check.SHARES.values()) == pytest.approx(1.0)


def test_a_budget_must_be_above_zero():
    with pytest.raises(ValueError):
        gpu_check.plan_budget(0.0, 0.0, on_gpu=True)


# --- skip_reason --------------------------------------------------------------------------


def test_skip_reason_goes_on_within_budget_and_skips_when_spent():
    assert gpu_check.skip_reason("training", 240.0, 100.0, 200.0, 480.0) is None
    part = gpu_check.skip_reason("training", 240.0, 240.0, 300.0, 480.0)
    assert part.startswith("over budget:") and "training" in part and "240" in part
    whole = gpu_check.skip_reason("bench", 168.0, 0.0, 481.0, 480.0)
    assert whole.startswith("over budget:") and "the check" in whole
    plan = gpu_check.plan_budget(8.0, 500.0, on_gpu=True)  # installation ate it all
    assert gpu_check.skip_reason("bench", plan["parts"]["bench"], 0.0, 500.0, plan["total_s"])


def test_one_line_is_type_and_message_on_one_line():
    assert gpu_check.one_line(RuntimeError("bad\n  thing")) == "RuntimeError: bad thing"
    assert gpu_check.one_line(KeyError()) == "KeyError"


# --- device facts -------------------------------------------------------------------------


def test_driver_from_nvidia_smi_and_none_when_it_fails(monkeypatch):
    def answers(cmd, **kw):
        assert "--query-gpu=driver_version" in cmd and kw.get("timeout")
        return subprocess.CompletedProcess(cmd, 0, "550.54.15\n550.54.15\n", "")

    monkeypatch.setattr(gpu_check.subprocess, "run", answers)
    assert gpu_check.nvidia_driver() == "550.54.15"

    def hangs(cmd, **kw):
        raise subprocess.TimeoutExpired(cmd, kw["timeout"])

    monkeypatch.setattr(gpu_check.subprocess, "run", hangs)
    assert gpu_check.nvidia_driver() is None

    def absent(cmd, **kw):
        raise FileNotFoundError(cmd[0])

    monkeypatch.setattr(gpu_check.subprocess, "run", absent)
    assert gpu_check.nvidia_driver() is None

    monkeypatch.setattr(
        gpu_check.subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, 9, "", "")
    )
    assert gpu_check.nvidia_driver() is None


def test_device_facts_on_the_cpu(monkeypatch):
    monkeypatch.setattr(gpu_check, "nvidia_driver", lambda: None)
    facts = gpu_check.device_facts(torch.device("cpu"), "A CPU")
    assert facts["type"] == "cpu" and facts["count"] == 0 and facts["capability"] is None
    assert facts["torch"] == torch.__version__ and facts["python"]
    assert facts["cpu"] and facts["cpu_count"] >= 1
    assert {"memory_gib", "driver", "cuda", "cudnn"} <= set(facts)


# --- markdown -----------------------------------------------------------------------------


def _result(**changes):
    result = {
        "kind": "pekit-gpu-check",
        "device": {
            "type": "cuda",
            "name": "NVIDIA H200",
            "count": 1,
            "capability": [9, 0],
            "memory_gib": 139.8,
            "driver": "550.54.15",
            "torch": "2.1.0",
            "cuda": "12.1",
            "cudnn": 8902,
            "python": "3.10.12",
            "cpu": "Some Xeon",
            "cpu_count": 16,
        },
        "scaled_down": None,
        "budget": {
            "minutes": 4.0,
            "before_check_s": 60.0,
            "left_s": 180.0,
            "enforced": True,
            "parts": {
                "table1": {"budget_s": 27.0, "spent_s": 12.5, "over": False},
                "training": {"budget_s": 90.0, "spent_s": 97.25, "over": True},
                "bench": {"budget_s": 63.0, "spent_s": 0.0, "over": False},
            },
            "scaled": "4-minute budget: 100 training updates a run",
            "skipped": [
                {
                    "part": "bench",
                    "what": "the bench",
                    "reason": "over budget: the check has spent 250 s of its 240 s",
                }
            ],
        },
        "errors": {"table1": "RuntimeError: no such model"},
        "seconds": {"table1": 12.5, "training": 97.25, "bench": 0.0, "total_with_install": 170.0},
        "table1": [],
        "training": [
            {
                "settings": "paper",
                "model": "visual_bert",
                "mode": "fc",
                "status": "finished",
                "updates": 100,
                "updates_per_s": 4.5,
                "peak_memory_mb": 5120.0,
                "losses_finite": True,
                "seconds": 40.0,
                "log": "x.log",
            },
            gpu_check._skipped_run("fast", "pe", "over budget: training has spent 97 s of 90 s"),
        ],
        "bench": None,
        "ok": False,
    }
    result.update(changes)
    return result


def test_markdown_says_the_device_the_budget_the_errors_and_what_was_skipped():
    md = gpu_check.markdown(_result())
    assert "NVIDIA H200" in md and "compute capability 9.0" in md and "139.8 GiB" in md
    assert "driver 550.54.15" in md and "cuDNN 8902" in md and "CUDA 12.1" in md
    assert "Python 3.10.12" in md and "Some Xeon (16 cores)" in md
    assert "## Budget" in md and "4 minutes, installation included" in md
    assert "| training | 97.25 | 90 | OVER |" in md
    assert "| Table I | 12.5 | 27 | within |" in md
    assert "**Scaled:** 4-minute budget" in md
    assert "- bench: the bench (over budget: the check has spent 250 s" in md
    assert "**Error:** `RuntimeError: no such model`" in md
    assert "| skipped |" in md  # the skipped run's row
    assert "Something failed" in md and "All good" not in md


def test_markdown_without_errors_or_skips_says_all_good_and_no_error():
    result = _result(errors={}, ok=True)
    result["budget"]["skipped"] = []
    result["budget"]["scaled"] = None
    result["device"]["driver"] = None
    md = gpu_check.markdown(result)
    assert "**Error:**" not in md and "**Skipped:**" not in md and "**Scaled:**" not in md
    assert "NVIDIA driver -" in md
    assert "All good" in md


# --- check, with fake parts ---------------------------------------------------------------


def _fake_table1(calls, fail=False):
    def table1(device, model_names, workdir, echo, rows=None):
        calls.append("table1")
        rows.append(
            {
                "model": "visual_bert",
                "mode": "fc",
                "total": 1,
                "trained": 1,
                "paper_total": 1,
                "paper_trained": 1,
                "pass": True,
            }
        )
        if fail:
            raise RuntimeError("MMF could not\nbuild vilbert")
        return rows

    return table1


def _fake_training(calls, after_run=lambda: None, fasts=None):
    def training(device, workdir, updates, echo, skip=None, rows=None, fast=None):
        calls.append(("training", updates))
        if fasts is not None:
            fasts.append(fast)
        for name, mode in gpu_check.RUNS:
            reason = skip()
            if reason:
                rows.append(gpu_check._skipped_run(name, mode, reason))
                continue
            after_run()
            rows.append(
                {
                    "settings": name,
                    "model": "visual_bert",
                    "mode": mode,
                    "status": "finished",
                    "updates": updates,
                    "updates_per_s": 1.0,
                    "peak_memory_mb": None,
                    "losses_finite": True,
                    "seconds": 0.1,
                    "log": "x",
                }
            )
        return rows

    return training


def _fake_bench(calls):
    def bench(device, out, echo, request=None):
        calls.append(("bench", request))
        return {"device": {"type": device.type}, "ratios": {}}

    return bench


@pytest.fixture
def on_cpu(monkeypatch):
    monkeypatch.setattr(gpu_check, "_device", lambda: (torch.device("cpu"), "Test CPU"))
    monkeypatch.setattr(gpu_check, "nvidia_driver", lambda: None)
    # A CPU with bf16 in hardware, whatever this one has (the emulating one has its own test).
    monkeypatch.setattr(gpu_check.settings, "cpu_native_bf16", lambda: True)


def test_a_part_that_raises_is_recorded_and_the_later_parts_run(monkeypatch, tmp_path, on_cpu):
    calls = []
    monkeypatch.setattr(gpu_check, "table1", _fake_table1(calls, fail=True))
    monkeypatch.setattr(gpu_check, "training", _fake_training(calls))
    monkeypatch.setattr(gpu_check, "bench", _fake_bench(calls))
    result = gpu_check.check(tmp_path / "out", since=time.time() - 5, echo=lambda t: None)
    assert calls == ["table1", ("training", 4), ("bench", gpu_check.CPU_BENCH)]
    assert result["errors"] == {"table1": "RuntimeError: MMF could not build vilbert"}
    assert result["ok"] is False
    assert len(result["table1"]) == 1  # the rows made before it raised are kept
    assert len(result["training"]) == 4 and result["bench"]["targets"]
    written = json.loads((tmp_path / "out" / "gpu-check.json").read_text())
    assert written["errors"] == result["errors"] and written["ok"] is False
    md = (tmp_path / "out" / "gpu-check.md").read_text()
    assert "RuntimeError: MMF could not build vilbert" in md and "All good" not in md


def test_a_raising_bench_is_recorded_and_the_exit_code_is_1(monkeypatch, tmp_path, on_cpu):
    calls = []

    def bench(device, out, echo, argv=()):
        raise OSError("disk full")

    monkeypatch.setattr(gpu_check, "table1", _fake_table1(calls))
    monkeypatch.setattr(gpu_check, "training", _fake_training(calls))
    monkeypatch.setattr(gpu_check, "bench", bench)
    args = argparse.Namespace(out=str(tmp_path / "out"), since=None, minutes=8.0)
    assert gpu_check_command._main(args) == 1
    result = json.loads((tmp_path / "out" / "gpu-check.json").read_text())
    assert result["errors"] == {"bench": "OSError: disk full"} and result["bench"] is None
    assert "seconds" in result and result["seconds"]["bench"] >= 0


def test_a_cpu_that_emulates_bf16_gets_the_small_fast_runs_and_says_so(
    monkeypatch, tmp_path, on_cpu
):
    monkeypatch.setattr(gpu_check.settings, "cpu_native_bf16", lambda: False)
    calls, fasts = [], []
    monkeypatch.setattr(gpu_check, "table1", _fake_table1(calls))
    monkeypatch.setattr(gpu_check, "training", _fake_training(calls, fasts=fasts))
    monkeypatch.setattr(gpu_check, "bench", _fake_bench(calls))
    result = gpu_check.check(tmp_path / "out", since=time.time() - 5, echo=lambda t: None)
    assert fasts == [gpu_check.EMULATED_BF16] and ("training", gpu_check.CPU_UPDATES) in calls
    assert "emulates bf16" in result["scaled_down"]
    assert "emulates bf16" in (tmp_path / "out" / "gpu-check.md").read_text()


def test_all_good_on_the_cpu_keeps_the_keys_the_install_test_reads(monkeypatch, tmp_path, on_cpu):
    calls = []
    monkeypatch.setattr(gpu_check, "table1", _fake_table1(calls))
    monkeypatch.setattr(gpu_check, "training", _fake_training(calls))
    monkeypatch.setattr(gpu_check, "bench", _fake_bench(calls))
    args = argparse.Namespace(out=str(tmp_path / "out"), since=time.time() - 30, minutes=8.0)
    assert gpu_check_command._main(args) == 0
    result = json.loads((tmp_path / "out" / "gpu-check.json").read_text())
    assert result["ok"] is True and result["errors"] == {}
    assert result["device"]["type"] == "cpu" and "no GPU" in result["scaled_down"]
    assert result["device"]["driver"] is None and result["device"]["cpu_count"] >= 1
    assert result["seconds"]["total_with_install"] >= sum(
        v for k, v in result["seconds"].items() if k != "total_with_install"
    )
    assert result["seconds"]["total_with_install"] >= 30
    budget = result["budget"]
    assert budget["minutes"] == 8.0 and budget["skipped"] == [] and budget["enforced"] is False
    assert budget["before_check_s"] >= 30
    assert set(budget["parts"]) == {"table1", "training", "bench"}
    for part, entry in budget["parts"].items():
        assert entry["spent_s"] == result["seconds"][part] and entry["over"] is False
    md = (tmp_path / "out" / "gpu-check.md").read_text()
    assert "Scaled down" in md and "### Targets" in md and "All good" in md


def test_the_cpu_runs_everything_even_over_budget(monkeypatch, tmp_path, on_cpu):
    calls = []
    monkeypatch.setattr(gpu_check, "table1", _fake_table1(calls))
    monkeypatch.setattr(gpu_check, "training", _fake_training(calls))
    monkeypatch.setattr(gpu_check, "bench", _fake_bench(calls))
    result = gpu_check.check(
        tmp_path / "out", since=time.time() - 3600, echo=lambda t: None, minutes=1.0
    )
    assert [c if isinstance(c, str) else c[0] for c in calls] == ["table1", "training", "bench"]
    assert all(r["status"] == "finished" for r in result["training"])
    assert result["budget"]["skipped"] == [] and result["ok"] is True


def _on_gpu(monkeypatch):
    monkeypatch.setattr(gpu_check, "_device", lambda: (CUDA, "Fake GPU"))
    monkeypatch.setattr(
        gpu_check, "device_facts", lambda device, name: {**_result()["device"], "name": name}
    )


def test_on_a_gpu_a_spent_budget_skips_the_training_runs_and_the_bench(monkeypatch, tmp_path):
    _on_gpu(monkeypatch)
    calls = []
    monkeypatch.setattr(gpu_check, "table1", _fake_table1(calls))
    # The real training: every run is skipped before any world is built (no MMF needed).
    monkeypatch.setattr(gpu_check, "bench", _fake_bench(calls))
    echoed = []
    result = gpu_check.check(
        tmp_path / "out", since=time.time() - 600, echo=echoed.append, minutes=4.0
    )
    assert calls == ["table1"]  # the bench never started
    assert [r["status"] for r in result["training"]] == ["skipped"] * 4
    assert all(r["reason"].startswith("over budget:") for r in result["training"])
    skipped = result["budget"]["skipped"]
    assert [s["part"] for s in skipped] == ["training"] * 4 + ["bench"]
    assert all(s["reason"].startswith("over budget:") for s in skipped)
    assert result["bench"] is None and result["ok"] is True  # skipped, not failed
    assert {e["budget_s"] for e in result["budget"]["parts"].values()} == {0.0}
    assert result["budget"]["before_check_s"] >= 600 and result["budget"]["left_s"] == 0.0
    assert not (tmp_path / "out" / "work" / "world").exists()
    assert any("skipped" in line for line in echoed)
    md = (tmp_path / "out" / "gpu-check.md").read_text()
    assert "**Skipped:**" in md and "- bench: the bench (over budget:" in md
    assert "Not run" in md and "All good" in md


def test_on_a_gpu_the_training_part_budget_stops_later_runs(monkeypatch, tmp_path):
    _on_gpu(monkeypatch)
    calls = []
    clock = [1000.0]
    monkeypatch.setattr(
        gpu_check, "time", types.SimpleNamespace(monotonic=lambda: clock[0], time=time.time)
    )

    def run_takes_100_s():  # each run: 100 s of a 240 s training budget
        clock[0] += 100.0

    monkeypatch.setattr(gpu_check, "table1", _fake_table1(calls))
    monkeypatch.setattr(gpu_check, "training", _fake_training(calls, run_takes_100_s))
    monkeypatch.setattr(gpu_check, "bench", _fake_bench(calls))
    result = gpu_check.check(tmp_path / "out", echo=lambda t: None, minutes=8.0)
    statuses = [r["status"] for r in result["training"]]
    assert statuses == ["finished", "finished", "finished", "skipped"]
    assert "training has spent 300 s of its 240 s" in result["training"][3]["reason"]
    assert result["budget"]["parts"]["training"] == {
        "budget_s": 240.0,
        "spent_s": 300.0,
        "over": True,
    }
    assert calls[-1] == (
        "bench",
        bench_runner.BenchRequest(counts=(("updates", 20), ("pipeline_updates", 100))),
    )
    assert result["ok"] is True


def test_a_failed_run_or_a_table_i_mismatch_is_not_ok(monkeypatch, tmp_path, on_cpu):
    calls = []

    def training(device, workdir, updates, echo, skip=None, rows=None, fast=None):
        rows.append({**_result()["training"][0], "status": "failed", "losses_finite": True})
        return rows

    monkeypatch.setattr(gpu_check, "table1", _fake_table1(calls))
    monkeypatch.setattr(gpu_check, "training", training)
    monkeypatch.setattr(gpu_check, "bench", _fake_bench(calls))
    result = gpu_check.check(tmp_path / "a", echo=lambda t: None)
    assert result["errors"] == {} and result["ok"] is False

    def mismatch(device, model_names, workdir, echo, rows=None):
        _fake_table1([])(device, model_names, workdir, echo, rows=rows)
        rows[0]["pass"] = False
        return rows

    monkeypatch.setattr(gpu_check, "table1", mismatch)
    monkeypatch.setattr(gpu_check, "training", _fake_training(calls))
    result = gpu_check.check(tmp_path / "b", echo=lambda t: None)
    assert result["errors"] == {} and result["ok"] is False
    assert "| FAIL |" in (tmp_path / "b" / "gpu-check.md").read_text()


@pytest.fixture(autouse=True)
def healthy_environment(request, monkeypatch):
    """The doctor's environment findings, all ok, unless a test asks for the real ones."""
    if "real_doctor" not in request.keywords:
        monkeypatch.setattr(
            gpu_check,
            "environment_findings",
            lambda: [{"status": "ok", "what": "packages", "detail": "the kit's 97"}],
        )


def test_a_doctor_fail_makes_the_check_not_ok_and_is_shown(monkeypatch, tmp_path, on_cpu):
    calls = []
    monkeypatch.setattr(gpu_check, "table1", _fake_table1(calls))
    monkeypatch.setattr(gpu_check, "training", _fake_training(calls))
    monkeypatch.setattr(gpu_check, "bench", _fake_bench(calls))
    failed = {"status": "FAIL", "what": "imports", "detail": "mmf: AttributeError: DeviceArray"}
    monkeypatch.setattr(gpu_check, "environment_findings", lambda: [failed])
    result = gpu_check.check(tmp_path, echo=lambda t: None)
    assert result["ok"] is False and result["doctor"] == [failed]
    md = (tmp_path / "gpu-check.md").read_text()
    assert "1 checks of the environment, 1 FAIL" in md
    assert "- FAIL imports: mmf: AttributeError: DeviceArray" in md


def test_fast_runs_on_a_cpu_that_emulates_bf16_are_fewer_and_smaller():
    native = gpu_check.plan_budget(8.0, 0.0, on_gpu=False, cpu_bf16=True)
    emulated = gpu_check.plan_budget(8.0, 0.0, on_gpu=False, cpu_bf16=False)
    assert native["fast"] == {"updates": gpu_check.CPU_UPDATES, "batch": None}
    assert emulated["fast"] == gpu_check.EMULATED_BF16
    assert emulated["fast"] is not gpu_check.EMULATED_BF16  # a plan's own copy
    assert emulated["updates"] == native["updates"] == gpu_check.CPU_UPDATES  # paper's runs
    # A GPU's fast runs are its paper runs' size, whatever cpu_bf16 says.
    gpu = gpu_check.plan_budget(8.0, 0.0, on_gpu=True, cpu_bf16=False)
    assert gpu["fast"] == {"updates": gpu["updates"], "batch": None}
    assert "emulates bf16" in gpu_check.cpu_scaled_down(emulated["fast"])
    assert "emulates" not in gpu_check.cpu_scaled_down(native["fast"])


def test_cpu_native_bf16_is_false_where_torch_cannot_tell(monkeypatch):
    check = gpu_check.settings.cpu_native_bf16.__wrapped__
    assert isinstance(check(), bool)  # this machine's answer, either way
    monkeypatch.setattr(torch.ops, "mkldnn", types.SimpleNamespace())
    assert check() is False


@pytest.mark.real_doctor
def test_the_environment_findings_are_the_doctors_without_data_and_assets():
    found = gpu_check.environment_findings()
    whats = {f["what"] for f in found}
    assert {"Python", "torch", "packages", "imports"} <= whats
    assert not any(w.startswith(("data ", "asset ")) for w in whats)
    assert all(set(f) == {"status", "what", "detail"} for f in found)


def test_the_training_part_runs_fc_and_pe_in_both_settings_and_keeps_only_logs(
    fake_mmf, tmp_path, monkeypatch
):
    # The real part, through the runner, with tests/helpers/mmf_log_writer.py as its mmf_run.
    monkeypatch.setattr(gpu_check.settings, "mmf_has_fast_keys", lambda: True)
    before = dict(os.environ)
    work = tmp_path / "work"
    rows = gpu_check.training(
        torch.device("cpu"), work, updates=4, echo=lambda _: None, fast=gpu_check.EMULATED_BF16
    )
    assert [(r["settings"], r["mode"]) for r in rows] == gpu_check.RUNS
    small = gpu_check.EMULATED_BF16
    for row in rows:
        expected = small["updates"] if row["settings"] == "fast" else 4
        assert row["status"] == "finished" and row["losses_finite"], row
        assert row["updates"] == expected, row
    calls = fake_mmf()
    assert len(calls) == len(gpu_check.RUNS)
    given = [dict(a.split("=", 1) for a in c if "=" in a) for c in calls]
    paper, fast = given[:2], given[2:]
    assert all(o["training.batch_size"] == "16" for o in paper)  # the settings' batch
    assert all(o["training.max_updates"] == "4" for o in paper)
    assert all(o["training.batch_size"] == str(small["batch"]) for o in fast)
    assert all(o["training.max_updates"] == str(small["updates"]) for o in fast)
    assert all(o["training.bf16"] == "True" for o in fast)  # fast's mixed precision, on the CPU
    # No checkpoints kept, no synthetic data left behind, the environment as it was: logs only.
    assert not list(work.rglob("*.ckpt")) and not list(work.rglob("*.pth"))
    assert sorted(str(p) for p in work.rglob("train.log")) == sorted(r["log"] for r in rows)
    assert len({r["log"] for r in rows}) == len(rows)
    assert not (work / "world").exists()
    assert dict(os.environ) == before
