"""The supervisor of `make run`: start-up steps run as child processes, and a stop leaves no
child and no thread of the supervisor running.

A thread still running when the interpreter finalizes is ended by CPython 3.11 with
pthread_exit; inside a Rust or C++ frame that aborts the process ("FATAL: exception not
rethrown"). `make run` once stored its connection on such a thread and aborted when a stop came
while that thread imported cryptography.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import textwrap
import threading
from collections.abc import Iterator

import pytest

from devhost.run_state import PidFile
from devhost.services import StartInterrupted, StepFailed, spawn
from devhost.stop_signals import StopSignals
from devhost.supervisor import Supervisor


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


@pytest.fixture
def stop() -> Iterator[StopSignals]:
    with StopSignals() as signals:
        yield signals


@pytest.fixture
def pid_file(tmp_path) -> PidFile:
    pid_file = PidFile(tmp_path / "processes.json")
    pid_file.start(os.getpid())
    return pid_file


def test_a_stop_during_a_step_ends_the_step_and_leaves_no_thread_running(stop, pid_file):
    before = set(threading.enumerate())
    children = Supervisor(stop, pid_file)
    step = spawn(
        "slow-step", _python("import time; print('working', flush=True); time.sleep(60)"), {}
    )
    sigterm = threading.Timer(0.5, os.kill, args=(os.getpid(), signal.SIGTERM))
    sigterm.start()
    try:
        with pytest.raises(StartInterrupted):
            children.run_step(step)
    finally:
        sigterm.join()
    assert step.pid in {p.pid for p in pid_file.read()}, "a running step is in the pid file"

    children.stop_all()

    assert step.proc.returncode == -signal.SIGTERM
    assert "working\n" in step.output
    left = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
    assert left == [], f"threads still running after stop_all: {left}"
    assert not pid_file.path.exists()


def test_a_failed_step_raises_its_last_line_and_is_forgotten(stop, pid_file):
    children = Supervisor(stop, pid_file)
    failing = _python(
        """
        import sys
        print("connecting", flush=True)
        print("could not store the connection: ClientAuthenticationError: refused", file=sys.stderr)
        sys.exit(1)
        """
    )
    step = spawn("step", failing, {})

    with pytest.raises(StepFailed, match=r"^could not store the connection: .*: refused$"):
        children.run_step(step)

    assert children.services == []
    assert step.pid not in {p.pid for p in pid_file.read()}


def test_a_step_that_succeeds_is_forgotten(stop, pid_file):
    children = Supervisor(stop, pid_file)
    step = spawn("step", _python("print('stored connection', flush=True)"), {})

    children.run_step(step)

    assert step.output == ["stored connection\n"]
    assert children.services == []
    assert [p.name for p in pid_file.read()] == ["run_all"]


def test_a_stopped_service_has_its_output_read_to_the_end(stop):
    children = Supervisor(stop)
    says_goodbye = _python(
        """
        import signal, sys, time
        def bye(signum, frame):
            print("stopping cleanly", flush=True)
            sys.exit(0)
        signal.signal(signal.SIGTERM, bye)
        print("ready", flush=True)
        time.sleep(60)
        """
    )
    service = children.add(spawn("service", says_goodbye, {"ready": re.compile("ready")}))
    children.wait_ready(service)

    children.stop_all()

    assert service.proc.returncode == 0
    assert service.output[-1] == "stopping cleanly\n"
    assert service._reader is not None and not service._reader.is_alive()
