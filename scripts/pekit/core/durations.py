"""Durations as people read them: the one format of the report, the progress line and status."""

import math


def readable(seconds, missing="n/a"):
    """'8.5 s', '42 s', '3.5 min', '2.1 h' (`missing` for None, nan or infinity), so that a
    short run never reads '0.00 h' and a long one never '7560 s'."""
    if seconds is None or (isinstance(seconds, float) and not math.isfinite(seconds)):
        return missing
    if round(seconds, 1) < 10:
        return f"{seconds:.1f} s"
    if round(seconds) < 60:
        return f"{seconds:.0f} s"
    if round(seconds / 60, 1) < 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
