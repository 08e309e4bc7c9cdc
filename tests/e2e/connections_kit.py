"""Helpers for the connection tests: the admin CLI as a subprocess, device-code approval,
sandbox sign-in in headless Chromium, and the secret values the log-grep test looks for."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from devhost.bootstrap import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, SANDBOX_TENANT_ID
from devhost.lifeline import die_with_parent
from devhost.services import ROOT
from tests.browser import chromium
from tests.conftest import SEED_PASSWORD

SERVICE_ACCOUNT = "svc-docuflow@contoso.test"
# Every secret value the connection tests use or see; the log-grep test reads this list.
SEEN_SECRETS: set[str] = {SANDBOX_CLIENT_SECRET, SEED_PASSWORD}
# Output of every admin CLI run (grepped for secrets too).
CLI_OUTPUT: list[str] = []


class _Captured(logging.Handler):
    """Every log record this test process emits from the moment the kit is imported (what
    pytest's caplog would show), formatted with its arguments, for the log-grep test."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(f"{record.name} {record.getMessage()} {record.exc_text or ''}")
        except Exception:  # a broken record must not break the test it came from
            self.lines.append(f"{record.name} {record.msg!r}")


TEST_PROCESS_LOG = _Captured()
logging.getLogger().addHandler(TEST_PROCESS_LOG)


def remember_secrets_in(value: Any) -> None:
    """Add every token-looking string inside a JSON document (a stored token cache) to
    SEEN_SECRETS: access tokens, refresh tokens, id tokens."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("secret", "access_token", "refresh_token", "id_token") and isinstance(
                item, str
            ):
                SEEN_SECRETS.add(item)
            remember_secrets_in(item)
    elif isinstance(value, list):
        for item in value:
            remember_secrets_in(item)
    elif isinstance(value, str) and value.startswith("{"):
        with contextlib.suppress(ValueError):
            remember_secrets_in(json.loads(value))


def cli_env(devhost) -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def admin(
    devhost, *args: str, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    """Run `python -m admin connections ARGS --settings <devhost settings>`."""
    cmd = [sys.executable, "-m", "admin", "connections", *args, "--settings", str(devhost.settings)]
    done = subprocess.run(
        cmd,
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(devhost),
    )
    CLI_OUTPUT.append(done.stdout + done.stderr)
    return done


def admin_json(devhost, *args: str, stdin: str | None = None) -> Any:
    done = admin(devhost, *args, "--json", stdin=stdin)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def sandbox_flags(sandbox_url: str) -> list[str]:
    """The sandbox's tenant and hosts. These connections are about sign-ins, not request
    signatures, so they accept unsigned requests (tests/e2e/test_security_*.py sign)."""
    return [
        "--allow-unsigned",
        "--tenant",
        SANDBOX_TENANT_ID,
        "--client-id",
        SANDBOX_CLIENT_ID,
        "--authority-host",
        sandbox_url,
        "--graph-base-url",
        f"{sandbox_url}/v1.0",
        "--no-instance-discovery",
    ]


def add_service_account(devhost, name: str, *extra: str, account: str = SERVICE_ACCOUNT) -> None:
    """A service-account connection for *@contoso.test; `extra`: more `connections add` options."""
    done = admin(
        devhost,
        "add",
        name,
        "--mode",
        "service_account",
        "--account",
        account,
        "--sender",
        "*@contoso.test",
        *extra,
        *sandbox_flags(devhost.sandbox_url),
    )
    assert done.returncode == 0, done.stdout + done.stderr


def add_user_connection(devhost, name: str) -> None:
    done = admin(
        devhost,
        "add",
        name,
        "--mode",
        "user",
        "--sender",
        "*@contoso.test",
        "--return-url-host",
        "127.0.0.1",
        "--secret-stdin",
        *sandbox_flags(devhost.sandbox_url),
        stdin=SANDBOX_CLIENT_SECRET,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# The CLI's own --timeout; the kit waits longer than this so that a CLI which never sees the
# approval answers for itself ("Nobody signed in...") instead of being killed by the kit.
CLI_SIGN_IN_TIMEOUT = 60
# Bounds for the kit's own waits: the CLI printing its code (imports under load can take a
# while), the exit after --timeout, and both pipes reaching end-of-file after the exit.
CODE_PRINT_TIMEOUT = 60
EXIT_GRACE = 30
PIPE_EOF_TIMEOUT = 30


class _PipeReader:
    """Reads one pipe of a child process to end-of-file on a thread: the text so far, each line
    also on a queue for a watcher, and whether EOF was reached (so output is never cut short)."""

    def __init__(self, stream: Any) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self._chunks: list[str] = []
        self._stream = stream
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for line in self._stream:
            self._chunks.append(line)
            self.lines.put(line)

    def text(self) -> str:
        return "".join(self._chunks)

    def wait_for_eof(self, timeout: float) -> bool:
        """True once everything the child wrote has been read (the pipe closed)."""
        self._thread.join(timeout)
        return not self._thread.is_alive()


def _wait_for_user_code(err: _PipeReader, timeout: float) -> str | None:
    """The user code from the CLI's "and enter the code: XXXX" line, or None by the deadline."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = err.lines.get(timeout=left)
        except queue.Empty:
            return None
        if "enter the code:" in line:
            return line.rsplit(":", 1)[1].strip()
    return None


def authenticate_with_device_code(devhost, sandbox, name: str, upn: str, *, as_json: bool = False):
    """Run `authenticate` as a subprocess; approve the code it prints through the control API.

    Returns (exit status, stdout, stderr, user code) with *all* of both streams: each pipe is
    read on its own thread from the start (a full pipe can never stall the CLI) and the kit
    waits, bounded, for end-of-file on both after the exit. Earlier this read stderr on a thread
    but returned after a bounded join without checking it, so under load the CLI's last line
    (its verdict) could be missing from stderr although the exit status was already 1.
    """
    cmd = [sys.executable, "-m", "admin", "connections", "authenticate", name]
    cmd += ["--settings", str(devhost.settings), "--timeout", str(CLI_SIGN_IN_TIMEOUT)]
    if as_json:
        cmd.append("--json")
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(devhost),
        start_new_session=True,
        preexec_fn=die_with_parent(),  # a killed test run takes the CLI with it
    )
    out, err = _PipeReader(proc.stdout), _PipeReader(proc.stderr)
    try:
        code = _wait_for_user_code(err, CODE_PRINT_TIMEOUT)
        assert code, "the CLI never printed a user code:\n" + out.text() + err.text()
        sandbox.control(
            "POST", "devicecode/approve", json={"userCode": code, "user": upn}, timeout=30
        )
        proc.wait(CLI_SIGN_IN_TIMEOUT + EXIT_GRACE)
        for stream, reader in (("stdout", out), ("stderr", err)):
            assert reader.wait_for_eof(PIPE_EOF_TIMEOUT), (
                f"the CLI exited ({proc.returncode}) but its {stream} did not close within "
                f"{PIPE_EOF_TIMEOUT}s (a leftover child holding it?):\n{out.text()}{err.text()}"
            )
    except BaseException:
        # Its own session: end the CLI and anything it started, then let the error through.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        raise
    CLI_OUTPUT.append(out.text() + err.text())
    return proc.returncode, out.text(), err.text(), code


def stored_secret(sandbox, name: str) -> str | None:
    """Read a secret from the sandbox Key Vault with the seed app (None when absent)."""
    from azure.core.exceptions import ResourceNotFoundError
    from azure.identity import ClientSecretCredential
    from azure.keyvault.secrets import SecretClient

    credential = ClientSecretCredential(
        SANDBOX_TENANT_ID,
        SANDBOX_CLIENT_ID,
        SANDBOX_CLIENT_SECRET,
        authority=sandbox.url,
        disable_instance_discovery=True,
    )
    client = SecretClient(sandbox.url, credential, verify_challenge_resource=False)
    try:
        value = client.get_secret(name).value
    except ResourceNotFoundError:
        value = None
    finally:
        client.close()
        credential.close()
    if value:
        remember_secrets_in(value)
    return value


def send(devhost, connection: str, sender: str, *, user: str | None = None, subject: str = "hi"):
    body: dict[str, Any] = {
        "connection": connection,
        "from": sender,
        "to": ["extern@example.test"],
        "subject": subject,
        "body": {"contentType": "text", "content": "connection test"},
    }
    if user:
        body["user"] = user
    return devhost.post("/api/mail/send", json=body)


def sent_items_subjects(sandbox, mailbox: str) -> list[str]:
    """Subjects in `mailbox`'s Sent Items once its Outbox is empty, read with an app token of
    the seed app."""
    import msal
    import requests

    app = msal.ConfidentialClientApplication(
        SANDBOX_CLIENT_ID,
        client_credential=SANDBOX_CLIENT_SECRET,
        authority=f"{sandbox.url}/{SANDBOX_TENANT_ID}",
        instance_discovery=False,
    )
    token = app.acquire_token_for_client(["https://graph.microsoft.com/.default"])["access_token"]
    SEEN_SECRETS.add(token)

    def subjects(folder: str) -> list[str]:
        resp = requests.get(
            f"{sandbox.url}/v1.0/users/{mailbox}/mailFolders/{folder}/messages",
            params={"$select": "subject", "$top": "100"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
            verify=sandbox.ca,
        )
        resp.raise_for_status()
        return [m["subject"] for m in resp.json()["value"]]

    # A sent mail reaches Sent Items after the transit time: wait until none is in flight.
    deadline = time.monotonic() + sandbox.transit_seconds()
    while subjects("outbox") and time.monotonic() < deadline:
        time.sleep(0.1)
    return subjects("sentitems")


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def browser_sign_in(
    browser, url: str, username: str, *, language: str = "en-US"
) -> tuple[str, str]:
    """Open `url` (our login link), sign in on the sandbox page as `username`; returns the
    result page's (data-ok, message) text."""
    # Chromium does not know the sandbox CA; only this test context ignores HTTPS errors.
    context = browser.new_context(ignore_https_errors=True, locale=language)
    page = context.new_page()
    try:
        page.goto(url, timeout=15000)
        page.fill("#username", username)
        page.fill("#password", SEED_PASSWORD)
        page.click("#accept", timeout=5000)
        page.wait_for_selector("#result", timeout=15000)
        return (
            page.locator("#result").get_attribute("data-ok") or "",
            page.locator("#message").inner_text(),
        )
    finally:
        context.close()
