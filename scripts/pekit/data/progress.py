"""A progress bar: tqdm when importable, else a counter on stderr (the core is stdlib-only)."""

import sys
import time


class _Counter:
    def __init__(self, total, desc, every=0.5):
        self.total = total
        self.desc = desc
        self.n = 0
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
        sys.stderr.write(f"{end}{self.desc}: {self.n}{total}")
        sys.stderr.flush()

    def close(self):
        self._show("\r")
        sys.stderr.write("\n")


class _Silent:
    def update(self, k=1):
        pass

    def close(self):
        pass


def progress(total=None, desc="", enabled=True):
    """Return an object with update(k) and close()."""
    if not enabled:
        return _Silent()
    try:
        from tqdm import tqdm
    except ImportError:
        return _Counter(total, desc)
    return tqdm(total=total, desc=desc, unit="rec", mininterval=0.5, file=sys.stderr)
