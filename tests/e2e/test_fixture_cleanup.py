"""A test run that fails, is interrupted or is killed leaves no service process behind.

Runs a small pytest session of its own with the suite's real `sandbox` and `azurite` fixtures
(a Python and a Node child process), ends it four ways and looks for anything left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from devhost.lifeline import die_with_parent
from devhost.services import ROOT
from tests.processes import kill_marked, marked_env, marked_processes, new_marker, wait_until_gone

pytestmark = pytest.mark.slow

INNER_TEST = """
import os
import pathlib
import time


def test_with_services(sandbox, azurite):
    pathlib.Path(os.environ["INNER_UP_FILE"]).write_text("up")
    if os.environ.get("INNER_HANG"):
        time.sleep(600)
    assert False, "this test fails on purpose"
"""
UP_WITHIN = 120.0  # seconds for the inner session to start both services, on a slow machine
GONE_WITHIN = 10.0


def _as_from_a_terminal() -> Callable[[], None]:
    """The inner run's `preexec_fn`: it dies with this test, and SIGINT ends it as Ctrl-C does in
    a terminal, also where this test run ignores SIGINT (a background job of a shell without job
    control, as a CI runner may start it): a child inherits the ignoring, and Python keeps it."""
    dies_with_parent = die_with_parent()

    def preexec() -> None:
        if dies_with_parent is not None:
            dies_with_parent()
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    return preexec


@pytest.mark.parametrize("ending", ["failed", "SIGINT", "SIGTERM", "SIGKILL"])
def test_an_ended_test_run_leaves_no_service_running(tmp_path, ending):
    (tmp_path / "test_inner.py").write_text(INNER_TEST, encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    up_file, log = tmp_path / "up", tmp_path / "inner.log"
    marker = new_marker()
    # No plugin autoloading: the inner session needs none, and loading them is most of its cost.
    env = {
        **marked_env(marker),
        "INNER_UP_FILE": str(up_file),
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    if ending != "failed":
        env["INNER_HANG"] = "1"
    cmd = [sys.executable, "-m", "pytest", str(tmp_path / "test_inner.py"), "-q", "-s"]
    cmd += ["-c", str(tmp_path / "pytest.ini"), "-p", "tests.conftest", "-p", "no:cacheprovider"]
    with log.open("w") as output:
        inner = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_as_from_a_terminal(),
        )
    try:
        deadline = time.monotonic() + UP_WITHIN
        while not up_file.exists() and inner.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert up_file.exists(), f"the services never came up:\n{log.read_text()}"
        services = set(marked_processes(marker)) - {inner.pid}
        assert len(services) >= 2, f"sandbox and Azurite: {services}"

        if ending != "failed":
            os.kill(inner.pid, getattr(signal, ending))
        status = inner.wait(60)
        left = wait_until_gone(marker, GONE_WITHIN)

        assert not left, f"left running after a {ending} run: {left}\n{log.read_text()}"
        assert status != 0
    finally:
        if inner.poll() is None:
            inner.kill()
            inner.wait(10)
        kill_marked(marker)
