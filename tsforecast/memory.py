"""Resident memory of this process: the training history's per-epoch peak and the scale benchmark.

Linux exposes the peak resident set size (``VmHWM`` in ``/proc/self/status``) and lets a process reset
it (``5`` written to ``/proc/self/clear_refs``), which gives a peak per epoch. Elsewhere the peak is
``getrusage``'s lifetime maximum and cannot be reset. Torch-free, so every layer may use it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import resource
import sys
from pathlib import Path

__all__ = ["current_rss_bytes", "peak_rss_bytes", "release_free_memory", "reset_peak_rss"]

_STATUS, _CLEAR = Path("/proc/self/status"), Path("/proc/self/clear_refs")


def _status_bytes(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024  # reported in kB
    except OSError:
        pass
    return None


def peak_rss_bytes() -> int:
    """The highest resident memory of this process since it started or since :func:`reset_peak_rss`."""
    peak = _status_bytes("VmHWM")
    if peak is not None:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024  # bytes on macOS, kB elsewhere


def current_rss_bytes() -> int:
    """The resident memory of this process now (its peak where the current value is not exposed)."""
    current = _status_bytes("VmRSS")
    return current if current is not None else peak_rss_bytes()


def reset_peak_rss() -> bool:
    """Start a new peak at the current resident memory; False where the system does not allow it."""
    try:
        _CLEAR.write_text("5")
    except OSError:
        return False
    return True


def _glibc_trim():
    """The C library's ``malloc_trim`` (glibc), or None elsewhere."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):
        return None


_TRIM = _glibc_trim() if sys.platform.startswith("linux") else None


def release_free_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim``; elsewhere nothing).

    A training epoch allocates and frees the same few megabytes per batch, interleaved with small
    tensors that live on; glibc then keeps the freed holes resident, and a long epoch grew by about
    4 MB a step without holding anything (``benchmarks/scale.py --m5-epoch``).
    """
    if _TRIM is not None:
        _TRIM(0)
