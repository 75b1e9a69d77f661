"""The MMF log parser, on logs written in MMF a34bc2d's exact formats (see mmf_log_writer)."""

import json
import re

import pytest

from helpers.mmf_log_writer import mmf_test_log, timer, training_log
from pekit import cli
from pekit.run import mmf_log as logs


def paper_curve(best_update, best):
    """A curve peaking at `best_update` with the paper's best metrics there."""

    def curve(update, max_updates):
        if update == best_update:
            return dict(best, loss=0.60)
        return {
            "loss": 0.65,
            "accuracy": best["accuracy"] - 0.05,
            "binary_f1": best["binary_f1"] - 0.05,
            "roc_auc": best["roc_auc"] - 0.01 - update / 1e6,
        }

    return curve


def test_duration_seconds_reads_mmf_timer_strings():
    assert logs.duration_seconds("1h 30m 02s 123ms") == 5402.123
    assert logs.duration_seconds("49s 123ms") == 49.123
    assert logs.duration_seconds("0ms") == 0.0
    assert logs.duration_seconds(timer(3 * 3600 * 1000 + 600000)) == 3 * 3600 + 600
    assert logs.duration_seconds("Unknown") is None


def test_parse_fields_keeps_keys_with_spaces_and_numbers():
    fields = logs.parse_fields("progress: 100/22000, max mem: 5831.0, lr: 0., ups: 2.04, eta: 3h")
    assert fields == {
        "progress": "100/22000",
        "max mem": 5831.0,
        "lr": 0.0,
        "ups": 2.04,
        "eta": "3h",
    }


@pytest.mark.parametrize("colour", [True, False])
def test_parses_paper_format_log(colour):
    best = {"roc_auc": 0.7281, "accuracy": 0.6320, "binary_f1": 0.5354}
    text = training_log(
        max_updates=22000,
        curve=paper_curve(19000, best),
        colour=colour,
        total_params=113455250,
        trained_params=2004626,
        max_mem=3439.0,
        ups=4.8,
    )
    assert ("\x1b[32m" in text) is colour
    parsed = logs.parse_lines(text.splitlines(True), source="pe.log")
    assert parsed["dataset"] == "hateful_memes"
    assert parsed["max_updates"] == 22000
    assert parsed["parameters"] == {"total": 113455250, "trained": 2004626}
    assert [v["update"] for v in parsed["val"]] == list(range(1000, 22001, 1000))
    assert len(parsed["train"]) == 220
    assert parsed["train"][0]["update"] == 100 and "loss" in parsed["train"][0]
    assert parsed["best"] == {"update": 19000, "loss": 0.60, "cross_entropy": 0.60, **best}
    assert parsed["criterion"] == "hateful_memes/roc_auc"
    assert parsed["final_val"]["roc_auc"] == best["roc_auc"]
    assert parsed["test"] is None
    assert parsed["ups"] == 4.8 and parsed["ups_timed"] == pytest.approx(4.8, rel=1e-3)
    assert parsed["peak_memory_mb"] == 3439.0
    assert parsed["finished"] is True
    # 22000 updates at 4.8 ups plus start-up, as time_since_start and "Finished run in" say.
    assert 22000 / 4.8 < parsed["wall_time_s"] < 22000 / 4.8 + 60


def test_fast_updates_are_timed_by_the_lines_milliseconds_not_mmfs_whole_seconds():
    """MMF's `ups` is log_interval / whole seconds (at least 1): 3 updates in 148 ms read as
    3.00. The `time` field has milliseconds; ups_timed comes from it."""
    text = training_log(max_updates=60, curve={}, ups=20.27, log_interval=3)
    text = re.sub(r"ups: [0-9.]+", "ups: 3.00", text)
    parsed = logs.parse_lines(text.splitlines(True))
    assert parsed["ups"] == 3.0
    assert parsed["ups_timed"] == pytest.approx(20.27, rel=0.01)
    assert "ups_timed" not in parsed["train"][0]  # the first interval has no start to time from


def test_resumed_run_keeps_last_line_per_update_and_sums_wall_time():
    first = training_log(max_updates=3000, stop_at=1500, ups=5.0)
    second = training_log(max_updates=3000, start=1000, ups=5.0)
    parsed = logs.parse_lines((first + second).splitlines(True))
    assert [v["update"] for v in parsed["val"]] == [1000, 2000, 3000]
    assert [t["update"] for t in parsed["train"]] == list(range(100, 3001, 100))
    assert parsed["attempts"] == 2
    assert parsed["wall_time_s"] > 3000 / 5.0
    assert parsed["finished"] is True


def test_interrupted_log_is_not_finished():
    parsed = logs.parse_lines(training_log(max_updates=3000, stop_at=1500).splitlines(True))
    assert parsed["finished"] is False
    assert parsed["last_update"] == 1500
    assert parsed["best"]["update"] == 1000


def test_best_falls_back_to_highest_auroc_without_best_update():
    lines = [
        "progress: 1000/2000, val/x/cross_entropy: 0.6, val/total_loss: 0.6, val/x/accuracy: 0.5,"
        " val/x/binary_f1: 0.1, val/x/roc_auc: 0.61, val_time: 1s\n",
        "progress: 2000/2000, val/x/cross_entropy: 0.6, val/total_loss: 0.6, val/x/accuracy: 0.5,"
        " val/x/binary_f1: 0.1, val/x/roc_auc: 0.60, val_time: 1s\n",
    ]
    assert logs.parse_lines(lines)["best"]["update"] == 1000


def test_test_run_log_has_test_metrics():
    parsed = logs.parse_lines(mmf_test_log("mmh").splitlines(True))
    assert parsed["dataset"] == "mmh"
    assert parsed["test"] == {
        "update": None,
        "split": "test",
        "loss": 0.65,
        "cross_entropy": 0.65,
        "accuracy": 0.61,
        "binary_f1": 0.52,
        "roc_auc": 0.70,
    }
    assert parsed["val"] == [] and parsed["best"] is None


def test_cli_prints_json_per_log(tmp_path, capsys):
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_text(training_log(max_updates=2000))
    b.write_text(training_log(dataset="mmh", max_updates=1000, eval_interval=500))
    assert cli.main(["logs", "--compact", str(a), str(b)]) == 0
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [o["dataset"] for o in out] == ["hateful_memes", "mmh"]
    assert out[1]["val"][0]["update"] == 500


def test_cli_missing_log_is_an_error(tmp_path, capsys):
    assert cli.main(["logs", str(tmp_path / "nope.log")]) == 1
    assert "nope.log" in capsys.readouterr().err
