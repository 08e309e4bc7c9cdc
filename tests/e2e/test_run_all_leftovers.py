"""A busy port or an earlier run's leftovers: `make run` says so in one line and starts nothing;
`make stop` ends what the pid file names."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost.lifeline import die_with_parent
from devhost.run_state import PidFile, port_is_free
from devhost.services import ROOT
from tests.processes import kill_marked, marked_env, marked_processes, new_marker, wait_until_gone


@pytest.fixture
def marker() -> Iterator[str]:
    value = new_marker()
    try:
        yield value
    finally:
        kill_marked(value)


def _listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run_all(state: Path, marker: str, sandbox_port: int, devhost_port: int) -> tuple[int, str]:
    """run_all expected to refuse at once: its exit status and everything it printed."""
    cmd = [sys.executable, "-m", "devhost.run_all", "--sandbox-port", str(sandbox_port)]
    cmd += ["--devhost-port", str(devhost_port), "--state-dir", str(state)]
    cmd += ["--settings", str(state / "local.settings.json")]
    done = subprocess.run(
        cmd,
        cwd=ROOT,
        env=marked_env(marker),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=die_with_parent(),
    )
    return done.returncode, done.stdout + done.stderr


def _make_stop(state: Path) -> tuple[int, str]:
    """What `make stop` runs, for this state dir."""
    done = subprocess.run(
        [sys.executable, "-m", "devhost.stop", "--state-dir", str(state)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def _orphan_sandbox(state: Path, marker: str, port: int) -> subprocess.Popen[str]:
    """A sandbox as an earlier run would have left it: serving `port`, named in the pid file."""
    cmd = [sys.executable, "-m", "sandbox", "serve", "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--state", str(state / "sandbox")],
        cwd=ROOT,
        env=marked_env(marker),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=die_with_parent(),  # only so that a crashed test leaves nothing behind
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("sandbox ready"), "the sandbox did not start"
    pid_file = PidFile.in_state_dir(state)
    pid_file.start(1 << 22)  # the earlier run_all: long gone (no such pid)
    pid_file.add("sandbox", proc.pid, [port])
    return proc


def test_a_port_held_by_another_program_is_one_line_and_nothing_starts(tmp_path, marker):
    devhost_port = _free_port()
    with _listening_socket() as holder:
        port = holder.getsockname()[1]
        status, output = _run_all(tmp_path / "state", marker, port, devhost_port)

    assert status == 1
    assert output.count("\n") == 1, output
    assert "Traceback" not in output
    assert output.startswith(f"make run: port {port} (sandbox) is in use by another program")
    assert "stop that program, or use other ports: SANDBOX_PORT=" in output
    suggested = int(re.search(r"SANDBOX_PORT=(\d+)", output).group(1))
    assert suggested != port
    assert f"DEVHOST_PORT={devhost_port} make run" in output
    assert marked_processes(marker) == {}


def test_an_earlier_runs_sandbox_on_the_port_is_named_and_make_stop_ends_it(tmp_path, marker):
    state = tmp_path / "state"
    port, devhost_port = _free_port(), _free_port()
    orphan = _orphan_sandbox(state, marker, port)

    status, output = _run_all(state, marker, port, devhost_port)

    assert status == 1
    assert output.count("\n") == 1, output
    assert "Traceback" not in output
    assert (
        f"port {port} (sandbox) is held by the sandbox of an earlier run of this checkout "
        f"(pid {orphan.pid}): end it with `make stop`, or use other ports:"
    ) in output
    assert set(marked_processes(marker)) == {orphan.pid}, "the refused run started something"

    status, output = _make_stop(state)

    assert status == 0, output
    assert output.strip() == f"make stop: stopped sandbox (pid {orphan.pid}, port {port})"
    assert orphan.wait(10) == 0  # it was asked to stop, and stopped cleanly
    assert port_is_free(port)
    assert not PidFile.in_state_dir(state).path.exists()
    nothing = "make stop: nothing to stop (no run of this checkout is running)\n"
    assert _make_stop(state) == (0, nothing)


def test_leftovers_on_other_ports_still_stop_a_run_that_would_share_the_state(tmp_path, marker):
    state = tmp_path / "state"
    orphan = _orphan_sandbox(state, marker, _free_port())

    status, output = _run_all(state, marker, _free_port(), _free_port())

    assert status == 1
    assert output.count("\n") == 1, output
    assert output.startswith("make run: an earlier run of this checkout is still running (sandbox")
    assert f"pid {orphan.pid}" in output
    assert output.rstrip().endswith("end it with `make stop`")
    assert _make_stop(state)[0] == 0
    assert wait_until_gone(marker, 10) == {}


def test_make_stop_runs_the_stop_module():
    done = subprocess.run(
        ["make", "-s", "-n", "stop"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "-m devhost.stop" in done.stdout


def test_a_sandbox_on_a_busy_port_says_so_in_one_line(tmp_path):
    with _listening_socket() as holder:
        port = holder.getsockname()[1]
        cmd = [sys.executable, "-m", "sandbox", "serve", "--port", str(port)]
        done = subprocess.run(
            [*cmd, "--state", str(tmp_path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == f"sandbox: port {port} on 127.0.0.1 is in use\n"
