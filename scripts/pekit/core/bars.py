"""Progress bars on stderr: tqdm when importable, else a plain counter (the core is stdlib-only)."""

import sys
import time


class _Counter:
    def __init__(self, total, desc, unit, initial, stream, every=0.5):
        self.total = total
        self.desc = desc
        self.unit = unit
        self.n = initial
        self.stream = stream
        self.every = every
        self._last = 0.0

    def update(self, k=1):
        self.n += k
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            self._show("\r")

    def _show(self, end):
        total = f"/{self.total}" if self.total else ""
        self.stream.write(f"{end}{self.desc}: {self.n}{total} {self.unit}")
        self.stream.flush()

    def close(self):
        self._show("\r")
        self.stream.write("\n")


class _Silent:
    def update(self, k=1):
        pass

    def close(self):
        pass


def progress(total=None, desc="", enabled=True, unit="rec", initial=0, stream=None):
    """Return an object with update(k) and close(); unit "B" counts bytes. Silent unless the
    stream is a terminal: in a log or a pipe a bar is noise around the lines that matter."""
    stream = stream or sys.stderr
    if not enabled or not (hasattr(stream, "isatty") and stream.isatty()):
        return _Silent()
    try:
        from tqdm import tqdm
    except ImportError:
        return _Counter(total, desc, unit, initial, stream)
    scale = {"unit_scale": True, "unit_divisor": 1024} if unit == "B" else {}
    return tqdm(
        total=total, initial=initial, desc=desc, unit=unit, mininterval=0.5, file=stream, **scale
    )
