"""Live training progress (run/progress.py) on logs written in MMF's formats (mmf_log_writer)."""

import io
import sys
import time
from pathlib import Path

import pytest

from helpers.mmf_log_writer import line, summary, training_log
from pekit.run import execute, progress

WRITER = Path(__file__).resolve().parent / "helpers" / "mmf_log_writer.py"
KEY = "hmd/visual_bert/pe/seed1"
AUROC = {500: 0.6250, 1000: 0.6123, 1500: 0.6300, 2000: 0.6200}


def curve(update, max_updates):
    return {"loss": 0.6, "accuracy": 0.6, "binary_f1": 0.5, "roc_auc": AUROC.get(update, 0.6)}


def log_text(**kw):
    """2,000 updates at 4 updates/s, a progress line every 100, a validation every 500."""
    options = dict(max_updates=2000, eval_interval=500, ups=4.0, curve=curve, colour=False)
    return training_log(**dict(options, **kw))


def cut(text, marker, offset=0):
    """`text` split where `marker` starts (plus `offset` characters)."""
    at = text.index(marker) + offset
    return text[:at], text[at:]


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    # A terminal line is cut at the terminal's width; these tests compare whole lines.
    monkeypatch.setenv("COLUMNS", "200")


def test_max_updates_is_the_commands_last():
    cmd = ["mmf_run", "training.max_updates=22000", "x=1", "training.max_updates=3000"]
    assert progress.max_updates(cmd) == 3000
    assert progress.max_updates(["mmf_run", "training.max_updates=many"]) is None
    assert progress.max_updates(None) is None


def test_read_new_keeps_a_partial_line_for_the_next_read(tmp_path):
    log = tmp_path / "train.log"
    assert progress.read_new(log, 0) == ([], 0)  # not written yet
    log.write_bytes(b"one\ntw")
    lines, offset = progress.read_new(log, 0)
    assert (lines, offset) == (["one\n"], 4)
    assert progress.read_new(log, offset) == ([], 4)
    with open(log, "ab") as f:
        f.write(b"o\nthree\n")
    assert progress.read_new(log, offset) == (["two\n", "three\n"], 14)
    log.write_bytes(b"new\n")  # replaced (a forced rerun): read from the start
    assert progress.read_new(log, 14) == (["new\n"], 4)
    log.write_bytes(b"x" * 10)  # a line longer than a read is taken whole
    assert progress.read_new(log, 0, limit=4) == (["xxxx"], 4)


def test_progress_follows_a_log_growing_in_chunks(tmp_path):
    log = tmp_path / "train.log"
    text = log_text()
    # A progress line split across two writes, the validation of update 500 after its
    # training line, that of 1000 (lower: the best stays at 500) later still.
    first, rest = cut(text, "progress: 300/2000", offset=20)
    second, rest = cut(rest, "progress: 500/2000, val/")
    third, rest = cut(rest, "progress: 600/2000")
    fourth, fifth = cut(rest, "progress: 1100/2000")
    reader = progress.Progress(KEY, max_updates=2000)
    offset = 0
    seen = []
    for chunk in (first, second, third, fourth, fifth):
        with open(log, "a", encoding="utf-8") as f:
            f.write(chunk)
        lines, offset = progress.read_new(log, offset)
        reader.feed(lines)
        seen.append((reader.update, reader.rate(), reader.eta(), reader.validation()))
    none = ((None, None), (None, None))
    # 100 updates per MMF `time` of 25 s: 4 updates/s.
    assert seen[0] == (200, 4.0, 450.0, none)
    assert seen[1] == (500, 4.0, 375.0, none)
    assert seen[2] == (500, 4.0, 375.0, ((0.625, 500), (0.625, 500)))
    assert seen[3] == (1000, 4.0, 250.0, ((0.6123, 1000), (0.625, 500)))
    assert seen[4][:2] == (2000, 4.0)
    assert seen[4][3] == ((0.62, 2000), (0.63, 1500))
    assert reader.finished


def test_the_progress_line():
    reader = progress.Progress(KEY, max_updates=22000)
    assert reader.line() == f"{KEY}: update n/a/22000 · n/a upd/s · ETA n/a"
    first, _ = cut(log_text(max_updates=22000), "progress: 1100/22000")
    reader.feed(first.splitlines(True))
    assert reader.line() == (
        f"{KEY}: update 1000/22000 · 4.00 upd/s · ETA 1.5 h · val AUROC 0.6123 (best 0.6250 @500)"
    )
    assert progress.Progress().line(sep=" | ") == "update n/a | n/a upd/s | ETA n/a"


def test_the_log_says_how_many_updates_when_the_caller_does_not():
    reader = progress.Progress(KEY)
    reader.feed(log_text().splitlines(True)[:8])
    assert reader.max_updates == 2000


def test_a_resumed_attempt_goes_back_to_its_checkpoint():
    reader = progress.Progress(KEY)
    reader.feed(log_text(stop_at=1500).splitlines(True))
    assert reader.update == 1500
    resumed, _ = cut(log_text(start=1000), "progress: 1300/2000")
    reader.feed(resumed.splitlines(True))
    assert reader.update == 1200
    # The earlier attempt's best still counts.
    assert reader.validation()[1] == (0.63, 1500)


def test_without_line_times_the_rate_is_the_wall_clocks():
    clock = Clock()
    reader = progress.Progress(KEY, max_updates=1000, clock=clock)

    def progress_line(update):
        info = {"progress": f"{update}/1000", "train/hateful_memes/cross_entropy": "0.5"}
        return line("mmf.trainers.callbacks.logistics", summary(info), colour=False)

    reader.feed([progress_line(100)])
    assert reader.rate() is None and reader.eta() is None
    clock.now = 50.0
    reader.feed([progress_line(200)])
    assert reader.rate() == 2.0 and reader.eta() == 400.0


def chunks_of_a_run():
    """The log in the pieces a watcher meets: two progress lines, a third, the validation of
    update 500 with its progress line, then 600, then 700."""
    text = log_text()
    pieces = []
    for marker in ("progress: 300/", "progress: 400/", "progress: 600/", "progress: 700/"):
        head, text = cut(text, marker)
        pieces.append(head)
    head, _ = cut(text, "progress: 800/")
    return pieces + [head]


def test_watcher_on_a_terminal_rewrites_one_line(tmp_path):
    log, stream, clock = tmp_path / "train.log", Stream(tty=True), Clock()
    watcher = progress.Watcher(log, KEY, 2000, stream=stream, clock=clock)
    watcher.poll()
    assert stream.getvalue() == f"\r{KEY}: update n/a/2000 · n/a upd/s · ETA n/a\x1b[K"
    for piece in chunks_of_a_run():
        with open(log, "a", encoding="utf-8") as f:
            f.write(piece)
        watcher.poll()
        watcher.poll()  # nothing new: nothing written
    watcher.stop()
    out = stream.getvalue()
    shown = out.split("\r")[1:]
    assert len(shown) == 6
    assert shown[1] == f"{KEY}: update 200/2000 · 4.00 upd/s · ETA 7.5 min\x1b[K"
    assert shown[-1] == (
        f"{KEY}: update 700/2000 · 4.00 upd/s · ETA 5.4 min · val AUROC 0.6250 (best 0.6250 @500)"
        "\x1b[K\n"
    )
    assert out.count("\n") == 1


def test_watcher_elsewhere_writes_a_line_per_validation_and_minute(tmp_path):
    log, stream, clock = tmp_path / "train.log", Stream(tty=False), Clock()
    watcher = progress.Watcher(log, KEY, 2000, stream=stream, clock=clock, every_s=60)
    watcher.poll()
    assert stream.getvalue() == ""  # nothing to say before MMF's first progress line
    updates = []
    for when, piece in zip((0, 10, 20, 85, 90), chunks_of_a_run()):
        clock.now = when
        with open(log, "a", encoding="utf-8") as f:
            f.write(piece)
        watcher.poll()
        updates.append(stream.getvalue().count("\n"))
    # The first report, nothing 10 s later, the validation, a minute on, nothing 5 s later.
    assert updates == [1, 1, 2, 3, 3]
    watcher.stop()  # the end: the last state, if not shown yet
    watcher.stop()
    lines = stream.getvalue().splitlines()
    assert [x.split(" · ")[0] for x in lines] == [
        f"{KEY}: update {u}/2000" for u in (200, 500, 600, 700)
    ]
    assert "val AUROC 0.6250" in lines[1] and "\r" not in stream.getvalue()


def test_watcher_swallows_its_errors(tmp_path, monkeypatch):
    log = tmp_path / "train.log"
    log.write_text(log_text())

    class Broken(Stream):
        def write(self, text):
            raise OSError("the terminal went away")

    broken = progress.Watcher(log, KEY, stream=Broken(tty=True))
    broken.poll()
    broken.stop()

    def fail(*args, **kwargs):
        raise RuntimeError("a line the parser chokes on")

    stream = Stream(tty=False)
    watcher = progress.Watcher(log, KEY, stream=stream)
    monkeypatch.setattr(progress.logs, "parse_lines", fail)
    watcher.poll()
    watcher.stop()
    assert stream.getvalue() == ""


def test_watcher_thread_polls_until_stopped(tmp_path):
    log, stream = tmp_path / "train.log", Stream(tty=True)
    watcher = progress.Watcher(log, KEY, stream=stream, poll_s=0.01).start()
    log.write_text(log_text())
    deadline = time.monotonic() + 10
    while "2000/2000" not in stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    watcher.stop()
    assert stream.getvalue().endswith(
        "update 2000/2000 · 4.00 upd/s · finished · val AUROC 0.6200 (best 0.6300 @1500)\x1b[K\n"
    )


def test_execute_shows_a_trainings_progress_on_stderr(tmp_path, capsys):
    cmd = [sys.executable, str(WRITER), f"env.save_dir={tmp_path / 'mmf'}"]
    cmd.append("training.max_updates=2000")
    assert execute._execute(cmd, tmp_path / "train.log", "train", "", watch=KEY) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"{KEY}: update 2000/2000 · 5.00 upd/s · finished · val AUROC")
    assert err.count("\n") == 1
    # A test split's run shows nothing.
    assert execute._execute(cmd, tmp_path / "test.log", "test x", "") == 0
    assert capsys.readouterr().err == ""


def test_the_best_checkpoint_loaded_after_the_last_update_is_no_step_back():
    reader = progress.Progress(KEY)
    reader.feed(log_text().splitlines(True))
    assert reader.update == 2000
    # MMF restores the best checkpoint for its final evaluation once training is done.
    reader.feed(["2026-12-04T10:00:00 | mmf.utils.checkpoint: Current num updates: 1500\n"])
    assert reader.update == 2000
