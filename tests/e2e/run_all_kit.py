"""`python -m devhost.run_all` as a test's child process: its output line by line, signals,
and the processes it started (found by a marker in their environment)."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from devhost.lifeline import die_with_parent
from devhost.services import ROOT
from tests.processes import kill_marked, marked_env, new_marker

READY_LINE = "Ctrl-C stops everything"
START_TIMEOUT = 120  # seconds: Azurite + sandbox + devhost, on a slow CI machine


class RunAll:
    """`python -m devhost.run_all` in its own session (like `make run` in a terminal)."""

    def __init__(self, state: Path, sandbox_port: int = 0, devhost_port: int = 0) -> None:
        self.marker = new_marker()
        env = {**marked_env(self.marker), "PYTHONUNBUFFERED": "1"}
        env.pop("DEVHOST_FUNCTION_KEY", None)
        cmd = [sys.executable, "-m", "devhost.run_all", "--sandbox-port", str(sandbox_port)]
        cmd += ["--devhost-port", str(devhost_port), "--state-dir", str(state)]
        cmd += ["--settings", str(state / "local.settings.json")]
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            # A killed test run takes run_all (and so its children) with it.
            preexec_fn=die_with_parent(),
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, text: str, timeout: float = START_TIMEOUT) -> str:
        """All output up to the line containing `text`; fails the test on timeout or exit."""
        while True:
            try:
                line = self._queue.get(timeout=timeout)
            except queue.Empty:
                pytest.fail(f"no {text!r} within {timeout}s:\n{self.output()}")
            if line is None:
                pytest.fail(f"run_all exited before {text!r}:\n{self.output()}")
            self.lines.append(line)
            if text in line:
                return self.output()

    def output(self) -> str:
        return "".join(self.lines)

    def signal(self, sig: signal.Signals, *, group: bool = False) -> None:
        """`sig` to run_all alone (a terminal's Ctrl-C reaches only its foreground group, which
        the services left) or, with group, to its whole process group (as `timeout` does)."""
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(self.proc.pid, sig)
            else:
                self.proc.send_signal(sig)

    def finish(self, timeout: float) -> int | None:
        """Wait up to `timeout` s for the exit and the rest of the output; the status, or None
        if it did not exit (then it is killed)."""
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            status = None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        with contextlib.suppress(queue.Empty):
            while (line := self._queue.get(timeout=10)) is not None:
                self.lines.append(line)
        return status

    def interrupt(self) -> int:
        """Ctrl-C (SIGINT to run_all only, as the terminal would); returns the exit status."""
        self.signal(signal.SIGINT)
        status = self.finish(60)
        assert status is not None, f"run_all did not stop on SIGINT:\n{self.output()}"
        return status

    def clean_up(self) -> None:
        """Whatever happened: nothing this run started survives the test."""
        if self.proc.poll() is None:
            self.finish(0)
        kill_marked(self.marker)

    def __enter__(self) -> RunAll:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.clean_up()
