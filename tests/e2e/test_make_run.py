"""`make run` (devhost.run_all): the printed curl puts a mail in the sandbox; Ctrl-C stops all.

Drives `python -m devhost.run_all` itself on free ports with a temp state dir, twice, to show
that mailboxes and the function key survive a restart.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
import requests

from devhost.services import ROOT
from tests.conftest import SEED_CLIENT_ID, SEED_CLIENT_SECRET, SEED_TENANT_ID

pytestmark = pytest.mark.slow

READY_LINE = "Ctrl-C stops everything."
START_TIMEOUT = 120  # seconds: Azurite + sandbox + devhost, on a slow CI machine


class RunAll:
    """`python -m devhost.run_all` as a child process whose output is read line by line."""

    def __init__(self, state: Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("DEVHOST_FUNCTION_KEY", None)
        cmd = [sys.executable, "-m", "devhost.run_all", "--sandbox-port", "0"]
        cmd += ["--devhost-port", "0", "--state-dir", str(state)]
        cmd += ["--settings", str(state / "local.settings.json")]
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, text: str, timeout: float) -> str:
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

    def interrupt(self) -> int:
        """Ctrl-C (SIGINT to run_all only, as the terminal would); returns the exit status."""
        self.proc.send_signal(signal.SIGINT)
        try:
            status = self.proc.wait(60)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
        while (line := self._queue.get(timeout=10)) is not None:
            self.lines.append(line)
        return status


def _printed_curl(output: str) -> str:
    match = re.search(r"^curl .*?^  -d .*?$", output, re.MULTILINE | re.DOTALL)
    assert match, f"no curl command in the output:\n{output}"
    return match.group(0)


def _run_curl(command: str) -> str:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    done = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _inbox_subjects(sandbox_url: str, ca: str, mailbox: str) -> list[str]:
    """Subjects in `mailbox`'s Inbox, read over the sandbox's Graph API with an app token."""
    token = requests.post(
        f"{sandbox_url}/{SEED_TENANT_ID}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": SEED_CLIENT_ID,
            "client_secret": SEED_CLIENT_SECRET,
            "scope": "https://graph.microsoft.com/.default",
        },
        verify=ca,
        timeout=30,
    )
    token.raise_for_status()
    resp = requests.get(
        f"{sandbox_url}/v1.0/users/{mailbox}/mailFolders/inbox/messages",
        params={"$select": "subject", "$top": "100"},
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        verify=ca,
        timeout=30,
    )
    assert resp.status_code == 200, resp.text[:500]
    return [m["subject"] for m in resp.json()["value"]]


def test_printed_curl_sends_a_mail_that_survives_a_restart(tmp_path):
    state = tmp_path / "state"
    first = RunAll(state)
    try:
        output = first.wait_for(READY_LINE, START_TIMEOUT)
        sandbox_url = re.search(r"Sandbox web view \(mailboxes\): (https://\S+?)/?$", output, re.M)
        assert sandbox_url, output
        sandbox_url = sandbox_url.group(1)
        ca = str(state / "sandbox" / "ca.pem")
        key = re.search(r"Function key:\s+(\S+)", output).group(1)

        command = _printed_curl(output)
        assert "x-functions-key: " in command
        subject = f"make-run {uuid.uuid4().hex[:8]}"
        command = command.replace("Hello from exchange-processor", subject)
        answer = _run_curl(command)
        assert '"status"' in answer, answer
        assert subject in _inbox_subjects(sandbox_url, ca, "anna@contoso.test")
    finally:
        status = first.interrupt()
    assert status == 0, first.output()
    assert "stopped." in first.output()

    # Same state dir: the mail is still there and the function key did not change.
    second = RunAll(state)
    try:
        output = second.wait_for(READY_LINE, START_TIMEOUT)
        new_url = re.search(r"Sandbox web view \(mailboxes\): (https://\S+?)/?$", output, re.M)
        assert subject in _inbox_subjects(new_url.group(1), ca, "anna@contoso.test")
        assert re.search(r"Function key:\s+(\S+)", output).group(1) == key
    finally:
        assert second.interrupt() == 0, second.output()
