"""App-only connections end to end: certificate credentials, Sent Items of the sender, and a
contoso connection that can never act on fabrikam mailboxes."""

from __future__ import annotations

import uuid

import pytest

from devhost.bootstrap import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
from tests.certificates import self_signed_certificate
from tests.e2e.connections_kit import admin, sandbox_flags, send, sent_items_subjects

pytestmark = pytest.mark.timeout(120)


def test_an_app_connection_with_a_certificate_sends_into_the_senders_sent_items(
    fresh_devhost, sandbox
):
    key, cert = self_signed_certificate()
    both = key + cert  # the admin command line takes the key and the certificate in one PEM
    sandbox.control("POST", f"apps/{SANDBOX_CLIENT_ID}/certificates", json={"certificate": cert})
    name = f"cert-{uuid.uuid4().hex[:8]}.contoso.test"
    done = admin(
        fresh_devhost,
        "add",
        name,
        "--mode",
        "app",
        "--credential",
        "certificate",
        "--secret-stdin",
        "--sender",
        "*@contoso.test",
        *sandbox_flags(fresh_devhost.sandbox_url),
        stdin=both,
    )
    assert done.returncode == 0, done.stderr

    resp = send(fresh_devhost, name, "administratie@contoso.test", subject="cert-sent")

    assert resp.status_code == 200, resp.text
    assert "cert-sent" in sent_items_subjects(sandbox, "administratie@contoso.test")
    log = sandbox.requests_log()
    assert any(e["path"].endswith("/oauth2/v2.0/token") and e["status"] == 200 for e in log)


def test_the_app_connection_sends_as_administratie_into_its_sent_items(fresh_devhost, sandbox):
    resp = send(fresh_devhost, "contoso.test", "administratie@contoso.test", subject="app-sent")

    assert resp.status_code == 200, resp.text
    assert "app-sent" in sent_items_subjects(sandbox, "administratie@contoso.test")


def test_a_contoso_connection_refuses_a_fabrikam_sender(fresh_devhost):
    resp = send(fresh_devhost, "contoso.test", "ceo@fabrikam.test")

    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "sender_not_allowed"


def test_even_a_contoso_connection_allowing_fabrikam_cannot_reach_fabrikam_mailboxes(
    fresh_devhost,
):
    # A misconfigured allowlist must still not cross tenants: the token is contoso's.
    name = f"wide-{uuid.uuid4().hex[:8]}.contoso.test"
    done = admin(
        fresh_devhost,
        "add",
        name,
        "--mode",
        "app",
        "--secret-stdin",
        "--sender",
        "*@fabrikam.test",
        *sandbox_flags(fresh_devhost.sandbox_url),
        stdin=SANDBOX_CLIENT_SECRET,
    )
    assert done.returncode == 0, done.stderr

    resp = send(fresh_devhost, name, "ceo@fabrikam.test")
    move = fresh_devhost.post(
        "/api/mail/move",
        json={
            "connection": name,
            "mailbox": "ceo@fabrikam.test",
            "messageId": "AAMk",
            "destination": "archive",
        },
    )

    assert resp.status_code == 404, resp.text
    assert resp.json()["error"]["code"] == "mailbox_not_found"
    assert move.status_code == 404
