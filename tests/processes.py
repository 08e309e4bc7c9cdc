"""Processes a test started, found by a marker in their environment (children inherit it)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from pathlib import Path

MARKER_VARIABLE = "EXCHANGE_PROCESSOR_TEST_RUN"


def new_marker() -> str:
    return uuid.uuid4().hex


def marked_env(marker: str) -> dict[str, str]:
    """os.environ plus the marker: every process started with it, and its children, carry it."""
    return {**os.environ, MARKER_VARIABLE: marker}


def marked_processes(marker: str) -> dict[int, str]:
    """Live (not zombie) processes carrying `marker`: pid -> command line."""
    needle = f"{MARKER_VARIABLE}={marker}".encode()
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # A zombie's environ reads empty: it holds no port and is no leftover.
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        found[int(entry.name)] = command.strip()
    return found


def wait_until_gone(marker: str, timeout: float) -> dict[int, str]:
    """Wait up to `timeout` seconds for every marked process to end; returns those left."""
    deadline = time.monotonic() + timeout
    while (left := marked_processes(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def kill_marked(marker: str) -> None:
    """SIGKILL whatever still carries `marker` (a failed test's clean-up)."""
    for pid in marked_processes(marker):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
