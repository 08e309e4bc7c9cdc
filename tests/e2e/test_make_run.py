"""`make run` (devhost.run_all): the printed curl puts a mail in the sandbox; Ctrl-C stops all.

Drives `python -m devhost.run_all` itself on free ports with a temp state dir, twice, to show
that mailboxes and the function key survive a restart.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import uuid

import pytest
import requests

from tests.conftest import SEED_CLIENT_ID, SEED_CLIENT_SECRET, SEED_TENANT_ID
from tests.e2e.run_all_kit import READY_LINE, START_TIMEOUT, RunAll

pytestmark = pytest.mark.slow


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
    with RunAll(state) as first:
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
        # The mail reaches anna after the sandbox's realistic transit time (about a second).
        deadline = time.monotonic() + 30
        while subject not in _inbox_subjects(sandbox_url, ca, "anna@contoso.test"):
            assert time.monotonic() < deadline, "the mail never reached anna"
            time.sleep(0.2)
        status = first.interrupt()
    assert status == 0, first.output()
    assert "stopped." in first.output()

    # Same state dir: the mail is still there and the function key did not change.
    with RunAll(state) as second:
        output = second.wait_for(READY_LINE, START_TIMEOUT)
        new_url = re.search(r"Sandbox web view \(mailboxes\): (https://\S+?)/?$", output, re.M)
        assert subject in _inbox_subjects(new_url.group(1), ca, "anna@contoso.test")
        assert re.search(r"Function key:\s+(\S+)", output).group(1) == key
        status = second.interrupt()
    assert status == 0, second.output()
