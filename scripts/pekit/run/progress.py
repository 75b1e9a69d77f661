"""Live training progress: follow a run's growing train.log, parse it with run/mmf_log.py, and
show one line (update, updates/s, ETA, validation AUROC) on stderr while MMF trains.

A training run is hours of silence otherwise: MMF's output goes to the log, not the terminal.
"""

from __future__ import annotations

import math
import os
import shutil
import statistics
import sys
import threading
import time

from ..core.durations import readable
from . import mmf_log as logs

MAX_UPDATES = "training.max_updates="
# Progress lines the rate is taken over: few enough to follow a change of speed (a resumed
# attempt, another job on the GPU), enough to smooth one slow interval.
RECENT = 5
READ_LIMIT = 1 << 22  # bytes per read: a poll stays short while it catches up on a long log
CLEAR = "\x1b[K"  # clear to the end of the line: a shorter line leaves no tail of the last one


def max_updates(cmd):
    """The `training.max_updates=N` of an mmf_run command line (the last one wins, as in MMF);
    None without one."""
    found = None
    for item in cmd or []:
        text = str(item)
        if text.startswith(MAX_UPDATES):
            try:
                found = int(text[len(MAX_UPDATES) :])
            except ValueError:
                found = None
    return found


def read_new(path, offset, limit=READ_LIMIT):
    """The complete lines appended to `path` from byte `offset` on, and the offset to read from
    next: a partial last line is left for the next read, when its end has been written. A file
    shorter than `offset` was replaced: it is read from its start."""
    try:
        if os.path.getsize(path) < offset:
            offset = 0
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(limit)
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    if not end and len(data) >= limit:
        end = len(data)  # one line longer than a read: take it whole rather than stall on it
    lines = data[:end].decode("utf-8", "replace").splitlines(True)
    return lines, offset + end


def _matters(line):
    """Whether logs.parse_lines reads anything from `line`: only those lines are kept, so a log
    full of warnings costs no memory."""
    if len(line) > logs.LINE_LIMIT:
        return False  # no summary of MMF's: the report's parsing skips it too
    text = logs.ANSI.sub("", line)
    return any(
        pattern.search(text) for pattern in (logs.SUMMARY, logs.PARAMS, logs.LOADED, logs.FINISHED)
    )


class Progress:
    """What a run's log says so far: fed its lines as they come, parsed by logs.parse_lines."""

    def __init__(self, key=None, max_updates=None, clock=time.monotonic):
        self.key = key
        self.target = max_updates
        self.clock = clock
        self.update = None
        self.parsed = logs.parse_lines([])
        self._lines = []
        self._seen = []  # (clock, update) as updates arrive: the rate when lines carry no time

    def feed(self, lines):
        """Take the log's next lines."""
        new = [line for line in lines if _matters(line)]
        if not new:
            return
        self._lines.extend(new)
        # The whole log is parsed again: resumed attempts and MMF's best update need all of
        # it, and a 22,000-update run has a few hundred such lines.
        self.parsed = logs.parse_lines(self._lines)
        chunk = logs.parse_lines(new)
        # The update MMF is at is the newest line's, not the log's highest: a resumed attempt
        # goes back to its checkpoint's.
        current = chunk["last_update"]
        done = self.update is not None and self.update >= (self.max_updates or float("inf"))
        # After the last update MMF loads the best checkpoint for its final evaluation: that
        # is no step back.
        if current is None and chunk["loaded_updates"] and not done:
            current = chunk["loaded_updates"][-1]
        if current is not None:
            self._advance(current)

    def _advance(self, update):
        if self._seen and update < self._seen[-1][1]:
            self._seen = []  # a resumed attempt: the clock starts over
        if not self._seen or update > self._seen[-1][1]:
            self._seen = (self._seen + [(self.clock(), update)])[-RECENT - 1 :]
        self.update = update

    @property
    def max_updates(self):
        return self.parsed["max_updates"] or self.target

    @property
    def finished(self):
        return self.parsed["finished"]

    def rate(self):
        """Updates per second over the recent progress lines: from their ms `time` (as
        logs.py's ups_timed), else MMF's whole-second `ups`, else the wall clock between the
        lines' arrivals."""
        # Those up to the current update: a resumed attempt's log still holds the lines of the
        # updates it trains again, from before its checkpoint was restored.
        done = [
            e for e in self.parsed["train"] if self.update is None or e["update"] <= self.update
        ]
        recent = done[-RECENT:]
        for field in ("ups_timed", "ups"):
            values = [e[field] for e in recent if e.get(field)]
            if values:
                return statistics.median(values)
        if len(self._seen) > 1:
            (t0, u0), (t1, u1) = self._seen[0], self._seen[-1]
            if t1 > t0:
                return (u1 - u0) / (t1 - t0)
        return None

    def eta(self):
        """Seconds of training left at the current rate (validation time not counted)."""
        rate, total = self.rate(), self.max_updates
        if self.update is None or not total or not rate or not math.isfinite(rate) or rate < 0:
            return None
        left = max(0.0, (total - self.update) / rate)
        return left if math.isfinite(left) else None

    def validation(self):
        """(AUROC, update) of the newest validation, and of the best (MMF's best update)."""
        curve = self.parsed["val"]
        last = curve[-1] if curve else {}
        best = self.parsed["best"] or {}
        return (
            (last.get("roc_auc"), last.get("update")),
            (best.get("roc_auc"), best.get("update")),
        )

    def summary(self):
        (auroc, at), (best, best_at) = self.validation()
        rate = self.rate()
        return {
            "update": self.update,
            "max_updates": self.max_updates,
            "updates_per_s": None if rate is None else round(rate, 3),
            "eta_s": None if self.eta() is None else round(self.eta()),
            "val_auroc": auroc,
            "val_update": at,
            "best_val_auroc": best,
            "best_update": best_at,
            "finished": self.finished,
        }

    def line(self, sep=" · "):
        """'KEY: update 1200/22000 · 2.31 upd/s · ETA 2h 30m · val AUROC 0.6123 (best 0.6250
        @1000)'; what the log does not tell yet reads n/a, a validation before the first is
        left out."""
        total = self.max_updates
        update = "n/a" if self.update is None else self.update
        parts = [f"update {update}" + (f"/{total}" if total else "")]
        rate = self.rate()
        parts.append("n/a upd/s" if rate is None else f"{rate:.2f} upd/s")
        parts.append("finished" if self.finished else f"ETA {readable(self.eta())}")
        (auroc, _), (best, best_at) = self.validation()
        if auroc is not None:
            text = f"val AUROC {auroc:.4f}"
            if best is not None:
                text += f" (best {best:.4f} @{best_at})"
            parts.append(text)
        prefix = f"{self.key}: " if self.key else ""
        return prefix + sep.join(parts)


def _isatty(stream):
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _separator(stream):
    """' · ', or ' | ' where the stream cannot write it (an ASCII console)."""
    encoding = getattr(stream, "encoding", None)
    try:
        if encoding:  # none: a text stream in memory, which holds any character
            " · ".encode(encoding)
        return " · "
    except (LookupError, UnicodeEncodeError):
        return " | "


def _width(stream):
    """The terminal's width: a longer line wraps, and `\\r` then rewrites only its last row."""
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        columns = 0
    # 0: a terminal that does not say (a pty without a size).
    return columns or shutil.get_terminal_size().columns


class Watcher:
    """Polls a log while MMF writes it and shows its Progress on `stream` (stderr): on a
    terminal one line rewritten in place; elsewhere (CI, a log file) a line per new validation
    and at most one per `every_s` otherwise, so the output stays short. Nothing it meets stops
    the run: its errors are swallowed."""

    def __init__(
        self,
        path,
        key=None,
        max_updates=None,
        stream=None,
        offset=0,
        poll_s=1.5,
        every_s=60.0,
        clock=time.monotonic,
    ):
        self.path, self.offset = path, offset
        self.stream = stream or sys.stderr
        self.tty = _isatty(self.stream)
        self.sep = _separator(self.stream)
        self.progress = Progress(key, max_updates, clock)
        self.poll_s, self.every_s, self.clock = poll_s, every_s, clock
        self._shown = None  # the line last written
        self._shown_at = None
        self._validations = 0
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._loop, name="pekit-progress", daemon=True)
        self._thread.start()
        return self

    def _loop(self):
        while not self._stop.wait(self.poll_s):
            self.poll()

    def poll(self, final=False):
        """Read what the log gained and show it."""
        try:
            lines, self.offset = read_new(self.path, self.offset)
            self.progress.feed(lines)
            self._show(final)
        except Exception:
            pass  # progress is a convenience: a log it cannot read must not end a training

    def stop(self):
        """The last poll, once the thread is done; ends the terminal's line."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.poll_s + 10)
            if self._thread.is_alive():
                return  # stuck on the file system: leave it, it is a daemon thread
        self.poll(final=True)
        if self.tty and self._shown is not None:
            try:
                self._write("\n")
            except Exception:
                pass  # a closed terminal: nothing left to end

    def _show(self, final):
        text = self.progress.line(self.sep)
        if text == self._shown:
            return
        if self.tty:
            self._write("\r" + text[: max(_width(self.stream) - 1, 20)] + CLEAR)
        elif self._plain_due(final):
            self._write(text + "\n")
        else:
            return
        self._shown, self._shown_at = text, self.clock()

    def _plain_due(self, final):
        """Whether a plain line is worth writing: once training reports, then at each new
        validation, every `every_s` seconds, and at the end."""
        if self.progress.update is None:
            return False
        validations = len(self.progress.parsed["val"])
        new_validation, self._validations = validations > self._validations, validations
        return (
            final
            or new_validation
            or self._shown_at is None
            or self.clock() - self._shown_at >= self.every_s
        )

    def _write(self, text):
        self.stream.write(text)
        self.stream.flush()


def watch(path, key, max_updates=None, stream=None):
    """A started Watcher of a training's log (from its start: an earlier attempt's validations
    count towards the best), or None when it cannot start."""
    try:
        return Watcher(path, key=key, max_updates=max_updates, stream=stream).start()
    except Exception:
        return None
