"""The signin_health timer through the devhost, against the sandbox's clock and Azurite: a run on
day 80 keeps a service account alive past day 90 (without it the send parks); a revoked user is
marked needs_sign_in by the run and the notifyUrl hears it once, signed; parked work reported as
overdue by the parked_work timer writes the very line the infra alert counts."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import pytest
import requests

from devhost.services import wait_until
from shared.health.events import PARKED_OVERDUE, SIGNIN_HEALTH
from tests.e2e.background_support import (
    CallbackReceiver,
    finished,
    sent_copies,
    start_fast_devhost,
    wait_status,
)
from tests.e2e.connections_kit import (
    add_service_account,
    admin,
    admin_json,
    authenticate_with_device_code,
    browser,  # noqa: F401 - a fixture
    browser_sign_in,
    sandbox_flags,
)
from tests.functional.mailboxes import Mailboxes

pytestmark = pytest.mark.timeout(300)

SVC = "svc-docuflow@contoso.test"
ANNA = "anna@contoso.test"
ADMIN = "administratie@contoso.test"
MASTER_KEY = "signin-health-master-key"
RUN_DONE = "Executed 'Functions.{name}' (Succeeded, timer, manual)"
# A run makes a few token and Key Vault calls per sign-in; the loaded CI machine gets room.
RUN_SECONDS = 120


@pytest.fixture(scope="module")
def health(sandbox, azurite, tmp_path_factory):
    """A fast devhost whose signin_health run redeems every sign-in (the product's clock does
    not move with the sandbox's, so "idle for 7 days" is 0 here) and reports parked work after
    a second."""
    host = start_fast_devhost(
        sandbox,
        azurite,
        tmp_path_factory.mktemp("health-devhost"),
        extra={"SIGNIN_REFRESH_AFTER_DAYS": "0", "PARKED_ALERT_MINUTES": "0.02"},
        env={"DEVHOST_MASTER_KEY": MASTER_KEY},
    )
    try:
        yield host
    finally:
        host.stop()
        host.http.close()


def run_signin_health(host, timer: str = "signin_health") -> None:
    """Run the timer now (the host's admin API) and wait until that run has finished."""
    done = RUN_DONE.format(name=timer)
    before = host.logs().count(done)
    resp = host.request("POST", f"/admin/functions/{timer}", key=MASTER_KEY, json={"input": ""})
    assert resp.status_code == 202, resp.text
    assert wait_until(lambda: host.logs().count(done) > before, timeout=RUN_SECONDS), host.logs()[
        -5000:
    ]


def send(host, connection: str, subject: str, **extra) -> str:
    body = {
        "connection": connection,
        "from": ADMIN,
        "to": ["extern@example.test"],
        "subject": subject,
        "body": {"contentType": "text", "content": "sign-in health"},
        "mode": "async",
        **extra,
    }
    resp = host.post("/api/mail/send", json=body)
    assert resp.status_code == 202, resp.text
    return resp.json()["operationId"]


def advance(sandbox, days: float, user: str) -> None:
    sandbox.control("POST", "clock/advance", json={"days": days, "user": user})


def sign_in_state(host, connection: str) -> dict:
    (state,) = admin_json(host, "show", connection)["signIns"]
    return state


def service_account(host, sandbox, prefix: str, *extra: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}.contoso.test"
    add_service_account(host, name, *extra, account=SVC)
    rc, _out, err, _code = authenticate_with_device_code(host, sandbox, name, SVC)
    assert rc == 0, err
    return name


def test_a_run_on_day_80_keeps_the_service_account_working_past_day_90(health, sandbox):
    connection = service_account(health, sandbox, "alive")
    first = sign_in_state(health, connection)
    advance(sandbox, 80, SVC)

    run_signin_health(health)
    refreshed = sign_in_state(health, connection)
    advance(sandbox, 15, SVC)  # day 95 from the sign-in, day 15 from the run's refresh
    op = send(health, connection, "after day 90, kept alive")
    done = wait_status(health, op, finished, timeout=90)

    assert refreshed["state"] == "ok"
    assert refreshed["refreshTokenLastUsed"] >= first["refreshTokenLastUsed"]
    # The run redeemed it (rather than only recording it): its health line says so.
    (line,) = event_lines(health.logs(), SIGNIN_HEALTH, connection=connection)
    assert line["refreshed"] is True and line["state"] == "ok" and line["daysLeft"] == 90.0
    assert refreshed["lastChecked"]
    assert done["status"] == "succeeded", done
    assert sent_copies(Mailboxes(sandbox.url, sandbox.ca), ADMIN).get(op) == 1


def test_without_the_run_a_send_after_day_90_parks_and_is_reported_overdue(health, sandbox):
    with CallbackReceiver(Path(sandbox.ca).parent) as receiver:
        connection = service_account(health, sandbox, "lapsed", *notify_options(receiver.url))
        advance(sandbox, 91, SVC)

        op = send(health, connection, "after day 90, not kept alive")
        parked = wait_status(health, op, lambda s: s.get("status") == "parked" or finished(s), 90)
        # The work that found it marked the sign-in and told the notifyUrl (before any run).
        found_by_work = sign_in_state(health, connection)
        told_on_park = [json.loads(r.body) for r in receiver.received]
        # PARKED_ALERT_MINUTES is 0.02 here (1.2 s): wait it out, then let the hourly
        # parked_work timer report it; a second run reports nothing new.
        time.sleep(0.02 * 60 + 0.3)
        run_signin_health(health, "parked_work")
        run_signin_health(health, "parked_work")
        run_signin_health(health)  # the sign-in pass finds it lost too, already told

    assert parked["status"] == "parked", parked
    assert found_by_work["state"] == "needs_sign_in"
    assert [e["type"] for e in told_on_park] == ["signin.needs_sign_in", "operation.parked"]
    assert told_on_park[1]["operationId"] == op
    assert all(e["adminCommand"] == parked["adminCommand"] for e in told_on_park)
    assert len(receiver.received) == 2  # the runs found nothing new to tell
    assert parked["error"]["code"] == "reauth_required"
    assert "AADSTS700082" in parked["error"]["message"]
    assert parked["adminCommand"] == f"python -m admin connections authenticate {connection}"
    lines = event_lines(health.logs(), PARKED_OVERDUE, operationId=op)
    assert len(lines) == 1, lines
    assert lines[0]["connection"] == connection and lines[0]["parkedMinutes"] >= 0
    state = sign_in_state(health, connection)
    assert state["state"] == "needs_sign_in"
    assert "AADSTS700082" in state["lastError"]
    listed = admin(health, "list")
    assert f"{SVC} NEEDS SIGN-IN: invalid_grant (AADSTS700082)" in listed.stdout


def notify_options(url: str) -> tuple[str, ...]:
    """`connections add` options for a notifyUrl on the loopback receiver."""
    return (
        "--notify-url",
        url,
        "--callback-host",
        "127.0.0.1",
        "--allow-private-attachment-hosts",
    )


def event_lines(logs: str, event: str, **match: str) -> list[dict]:
    """The devhost's JSON log lines of `event` whose fields have the given values."""
    found = []
    for text in re.finditer(r"\{\"event\":\"" + re.escape(event) + r"\".*\}", logs):
        line = json.loads(text.group(0))
        if all(line.get(k) == v for k, v in match.items()):
            found.append(line)
    return found


@pytest.mark.browser
def test_a_revoked_user_is_marked_by_the_run_and_the_notify_url_hears_it_once_signed(
    health,
    sandbox,
    browser,  # noqa: F811
    tmp_path,
):
    from http_message_signatures import MappingKeyResolver
    from requests_http_signature import HTTPSignatureAuth, algorithms

    connection = f"notify-{uuid.uuid4().hex[:8]}.contoso.test"
    key_file = tmp_path / "signing.key"
    with CallbackReceiver(Path(sandbox.ca).parent) as receiver:
        done = admin(
            health,
            "add",
            connection,
            "--mode",
            "user",
            "--sender",
            "*@contoso.test",
            "--secret-stdin",
            "--callback-host",
            "127.0.0.1",
            "--allow-private-attachment-hosts",
            "--notify-url",
            receiver.url,
            "--signing-key-out",
            str(key_file),
            *sandbox_flags(health.sandbox_url),
            stdin="sandbox-app-secret",
        )
        assert done.returncode == 0, done.stdout + done.stderr
        login = f"{health.url}/api/auth/{connection}/login?user={ANNA}"
        assert browser_sign_in(browser, login, ANNA)[0] == "true"
        # revokeSignInSessions: Entra then refuses the refresh token with AADSTS50173.
        sandbox.control("POST", f"users/{ANNA}/revoke", json={"code": 50173})

        run_signin_health(health)
        run_signin_health(health)  # the state did not change: nothing more is sent

    key = key_file.read_text().strip()
    events = [json.loads(r.body) for r in receiver.received]
    assert [e["type"] for e in events] == ["signin.needs_sign_in"], events
    (got,) = receiver.received
    request = requests.Request("POST", receiver.url, data=got.body, headers=got.headers).prepare()
    verified = HTTPSignatureAuth.verify(
        request,
        signature_algorithm=algorithms.HMAC_SHA256,
        key_resolver=MappingKeyResolver(public_keys={connection: key.encode()}, private_keys={}),
        require_components=("@method", "@path", "content-digest"),
    )
    assert verified.parameters["keyid"] == connection
    event = events[0]
    assert event["connection"] == connection and event["user"] == ANNA
    assert f"/api/auth/{connection}/login?" in event["signInUrl"] and "anna" in event["signInUrl"]
    assert event["error"] == "invalid_grant (AADSTS50173)"
    assert event["reason"].startswith("revoked")
    assert "AADSTS" not in json.dumps({k: v for k, v in event.items() if k != "error"})
    # Found by the run, not by work: nothing of this connection was ever parked.
    from shared.settings import Settings
    from shared.work.table_store import TableOperationStore

    store = TableOperationStore.from_settings(
        Settings.load(env={"AzureWebJobsStorage": health_storage(health)})
    )
    assert store.parked_ids(connection) == []
    (state,) = admin_json(health, "show", connection)["signIns"]
    assert state["state"] == "needs_sign_in" and state["signedInAs"] == ANNA


def health_storage(host) -> str:
    values = json.loads(Path(host.settings).read_text())["Values"]
    return values["AzureWebJobsStorage"]
