"""Per-invocation peak memory of this process (Linux VmHWM), for `DEVHOST_REPORT_PEAK_MEMORY`.

The classic Functions host holds a request's body before the worker's function runs; the
devhost does the same, so the peak is reset after the body is read and read again when the
function has answered: the growth is what the function itself added. Under HTTP streams the
function reads its body itself: the peak is reset when the invocation starts, read and reset
again once the function holds the whole body (the growth while reading), and read when the
answer has been sent. Meaningful when one request runs at a time (the peak is per process).
"""

from __future__ import annotations

import os

REPORT_SETTING = "DEVHOST_REPORT_PEAK_MEMORY"


def enabled() -> bool:
    return os.environ.get(REPORT_SETTING, "").strip().lower() in {"1", "true", "yes"}


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/self/status (Linux only)")


def reset() -> int:
    """Start a new peak at the current resident size; returns that size in bytes."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
        fh.write("5")
    return _status_kib("VmRSS") * 1024


def peak() -> int:
    """The peak resident size (bytes) since the last reset()."""
    return _status_kib("VmHWM") * 1024
