"""Peak memory for deepfit.benchmark: CUDA's allocator statistics on a GPU; on the CPU the
process's peak resident set (VmHWM), which Linux lets a process reset by writing "5" to
/proc/self/clear_refs; elsewhere getrusage's peak since the process started, which cannot be."""

from __future__ import annotations

import resource
import sys

import torch

MB = 2**20


def reset_peak_memory(device: torch.device) -> float:
    """Reset the peak; return what is in use already (MB): tensors on CUDA, the resident set
    (Python, torch, the model, the data) on the CPU."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device) / MB
    try:  # Linux: "5" resets the peak resident set (VmHWM) to the current one
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return _proc_status("VmRSS") or 0.0


def _proc_status(field: str) -> float | None:
    """A memory line of /proc/self/status in MB (Linux), or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024 / MB
    except OSError:
        pass
    return None


def peak_memory(device: torch.device) -> tuple[float, str]:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / MB, "cuda_max_allocated"
    peak = _proc_status("VmHWM")
    if peak is not None:
        return peak, "rss_peak"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / (MB if sys.platform == "darwin" else 1024), "rss_peak_since_start"
