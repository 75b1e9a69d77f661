"""Peak memory: torch.cuda.max_memory_allocated on a GPU, the process's peak RSS on CPU.

On Linux the RSS peak (VmHWM) is reset through /proc/self/clear_refs, so each measurement has its
own; where that is not possible the figure is the process's peak so far (`resettable` says which).
"""

from __future__ import annotations

import resource
import sys


def reset_peak(device):
    if device.type == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats(device)
        return True
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_mb(device):
    if device.type == "cuda":
        import torch

        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # kilobytes on Linux, bytes on macOS
    return peak / (2**20 if sys.platform == "darwin" else 1024)


def kind(device):
    return "max_memory_allocated" if device.type == "cuda" else "peak RSS"
