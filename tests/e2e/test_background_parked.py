"""Parked work end to end: a revoked user's queued (or `auto`) send parks, and after a browser
sign-in it is sent once; a service account's parked send resumes after `admin connections
authenticate`."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

import pytest

from tests.e2e.background_support import (
    bg_fixture,  # noqa: F401 - provides the `bg` fixture to this module
    finished,
    sent_copies,
    wait_status,
)
from tests.e2e.connections_kit import (
    add_service_account,
    add_user_connection,
    authenticate_with_device_code,
    browser,  # noqa: F401 - a fixture
    browser_sign_in,
)
from tests.functional.mailboxes import Mailboxes

pytestmark = pytest.mark.timeout(240)

ANNA = "anna@contoso.test"
ADMIN = "administratie@contoso.test"
SERVICE_ACCOUNT = "svc-docuflow@contoso.test"


def queued_send(host, connection: str, sender: str, subject: str, **extra) -> str:
    """POST an async send (or `mode` in extra); returns its operation id."""
    return post_send(host, connection, sender, subject, **extra)["operationId"]


def post_send(host, connection: str, sender: str, subject: str, **extra) -> dict:
    """POST a send that must be answered 202; returns the answer."""
    body = {
        "connection": connection,
        "from": sender,
        "to": ["extern@example.test"],
        "subject": subject,
        "body": {"contentType": "text", "content": "Parked until someone signs in."},
        "mode": "async",
        **extra,
    }
    resp = host.post("/api/mail/send", json=body)
    assert resp.status_code == 202, resp.text
    return resp.json()


def parked_or_finished(status: dict) -> bool:
    return status.get("status") == "parked" or finished(status)


@pytest.mark.browser
@pytest.mark.parametrize("mode", ["async", "auto"])
def test_a_revoked_users_send_is_parked_and_sent_once_after_signing_in_again(
    bg,
    sandbox,
    browser,  # noqa: F811
    mode,
):
    connection = f"park-{uuid.uuid4().hex[:8]}.contoso.test"
    add_user_connection(bg, connection)
    login = f"{bg.url}/api/auth/{connection}/login?{urlencode({'user': ANNA})}"
    assert browser_sign_in(browser, login, ANNA)[0] == "true"
    sandbox.control("POST", f"users/{ANNA}/revoke", json={})
    # The sign-in left an access token in this process's memory (as it would in Azure, for up
    # to an hour); a new process has only the stored refresh token, which is now revoked.
    bg.stop()
    bg.start()

    answer = post_send(bg, connection, ANNA, f"parked for anna ({mode})", user=ANNA, mode=mode)
    op = answer["operationId"]
    if mode == "auto":
        # The inline attempt parked it at once: the answer says so, with the link.
        assert answer["status"] == "parked", answer
        assert answer["error"]["code"] == "reauth_required"
        assert answer["error"]["signInUrl"].startswith(f"{bg.url}/api/auth/{connection}/login?")
    parked = wait_status(bg, op, parked_or_finished)

    assert parked["status"] == "parked", parked
    assert parked["error"]["code"] == "reauth_required"
    assert parked["parkedUntil"]
    sign_in_url = parked["signInUrl"]
    assert sign_in_url.startswith(f"{bg.url}/api/auth/{connection}/login?"), sign_in_url
    boxes = Mailboxes(sandbox.url, sandbox.ca)
    assert op not in sent_copies(boxes, ANNA)

    ok, message = browser_sign_in(browser, sign_in_url, ANNA)
    assert ok == "true", message
    done = wait_status(bg, op, finished)

    assert done["status"] == "succeeded", done
    assert "signInUrl" not in done and done["result"]["messageId"]
    assert sent_copies(boxes, ANNA).get(op) == 1


def test_a_service_accounts_parked_send_resumes_after_the_admin_authenticates_again(bg, sandbox):
    connection = f"svc-park-{uuid.uuid4().hex[:8]}.contoso.test"
    add_service_account(bg, connection, account=SERVICE_ACCOUNT)
    rc, _out, err, _code = authenticate_with_device_code(bg, sandbox, connection, SERVICE_ACCOUNT)
    assert rc == 0, err
    sandbox.control("POST", f"users/{SERVICE_ACCOUNT}/revoke", json={})

    op = queued_send(bg, connection, ADMIN, "parked for the service account")
    parked = wait_status(bg, op, parked_or_finished)

    assert parked["status"] == "parked", parked
    assert parked["adminCommand"] == f"python -m admin connections authenticate {connection}"
    rc, out, err, _code = authenticate_with_device_code(bg, sandbox, connection, SERVICE_ACCOUNT)
    assert rc == 0, err
    assert "Re-queued 1 parked operation(s)." in out
    done = wait_status(bg, op, finished)

    assert done["status"] == "succeeded", done
    assert sent_copies(Mailboxes(sandbox.url, sandbox.ca), ADMIN).get(op) == 1
