"""Helpers for the connection tests: the admin CLI as a subprocess, device-code approval,
sandbox sign-in in headless Chromium, and the secret values the log-grep test looks for."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from devhost.bootstrap import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, SANDBOX_TENANT_ID
from devhost.services import ROOT
from tests.conftest import SEED_PASSWORD

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
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
    return [
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


def add_service_account(devhost, name: str, *, account: str = SERVICE_ACCOUNT) -> None:
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


def authenticate_with_device_code(devhost, sandbox, name: str, upn: str, *, as_json: bool = False):
    """Run `authenticate` as a subprocess; approve the code it prints through the control API."""
    cmd = [sys.executable, "-m", "admin", "connections", "authenticate", name]
    cmd += ["--settings", str(devhost.settings), "--timeout", "60"]
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
    )
    lines: queue.Queue[str] = queue.Queue()
    err_lines: list[str] = []

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            err_lines.append(line)
            lines.put(line)

    pumper = threading.Thread(target=pump, daemon=True)
    pumper.start()
    code = None
    deadline = time.monotonic() + 30
    try:
        while code is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if "enter the code:" in line:
                code = line.rsplit(":", 1)[1].strip()
        assert code, "the CLI never printed a user code:\n" + "".join(err_lines)
        sandbox.control("POST", "devicecode/approve", json={"userCode": code, "user": upn})
        proc.wait(60)
        assert proc.stdout is not None
        stdout = proc.stdout.read()
        pumper.join(10)  # stderr fully read before we look at it
    except BaseException:
        proc.kill()
        proc.wait(10)
        raise
    CLI_OUTPUT.append(stdout + "".join(err_lines))
    return proc.returncode, stdout, "".join(err_lines), code


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
    """Subjects in `mailbox`'s Sent Items, read with an app token of the seed app."""
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
    resp = requests.get(
        f"{sandbox.url}/v1.0/users/{mailbox}/mailFolders/sentitems/messages",
        params={"$select": "subject", "$top": "100"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        verify=sandbox.ca,
    )
    resp.raise_for_status()
    return [m["subject"] for m in resp.json()["value"]]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield b
        finally:
            b.close()


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
