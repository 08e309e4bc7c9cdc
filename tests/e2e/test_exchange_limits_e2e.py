"""Exchange Online's rules end to end through the devhost, with the product's clear errors:
a service account with Send As but no Full Access on the sender mailbox, and a message over the
maximum message size (known to the product before uploading, or only to Exchange)."""

from __future__ import annotations

import base64
import uuid

import pytest

from tests.e2e.connections_kit import (
    add_service_account,
    authenticate_with_device_code,
    sent_items_subjects,
)
from tests.functional.mailboxes import Mailboxes

pytestmark = pytest.mark.timeout(240)
ADMIN = "administratie@contoso.test"
ANNA = "anna@contoso.test"
SEND_AS_ONLY = "svc-sendas@contoso.test"  # the sandbox seed: Send As on administratie only
MB = 1024 * 1024


def mail(connection: str, **fields) -> dict:
    return {
        "connection": connection,
        "from": ADMIN,
        "to": [ANNA],
        "subject": f"e2e {uuid.uuid4()}",
        "body": {"contentType": "text", "content": "Hoi"},
        **fields,
    }


def graph_writes(sandbox, since: int) -> list[str]:
    log = sandbox.control("GET", "requests", params={"since": since, "limit": 5000}).json()
    return [
        f"{e['method']} {e['path']}"
        for e in log["value"]
        if e["method"] in ("POST", "PUT") and e["path"].startswith(("/v1.0/", "/upload/"))
    ]


def last_seq(sandbox) -> int:
    return sandbox.control("GET", "requests", params={"limit": 1}).json()["lastSeq"]


@pytest.fixture
def send_as_only(fresh_devhost, sandbox) -> str:
    """A service_account connection signed in as the account with Send As but no Full Access."""
    name = f"sendas-{uuid.uuid4().hex[:8]}.contoso.test"
    add_service_account(fresh_devhost, name, account=SEND_AS_ONLY)
    rc, out, err, _ = authenticate_with_device_code(fresh_devhost, sandbox, name, SEND_AS_ONLY)
    assert rc == 0, out + err
    return name


@pytest.mark.parametrize("save_copy", [True, False])
def test_send_as_without_full_access_is_send_as_denied_with_the_grant_hint(
    send_as_only, fresh_devhost, sandbox, save_copy
):
    """outlook-send-mail-from-other-user.md: sending through the sender mailbox (so its Sent
    Items gets the copy) needs Full Access besides Send As; Exchange refuses the account that
    has only Send As, and the product says which grant is missing."""
    body = mail(send_as_only, saveToSentItems=save_copy)
    resp = fresh_devhost.post("/api/mail/send", json=body)

    assert resp.status_code == 403, resp.text
    error = resp.json()["error"]
    assert error["code"] == "send_as_denied"
    assert "Full Access" in error["message"] and "Add-MailboxPermission" in error["message"]
    assert error["graph"]["code"] == "ErrorAccessDenied"
    assert body["subject"] not in sent_items_subjects(sandbox, ADMIN)
    boxes = Mailboxes(sandbox.url, sandbox.ca)
    assert boxes.messages(ANNA, "inbox", body["subject"]) == []


def test_a_message_over_the_size_limit_is_413_before_anything_is_uploaded(fresh_devhost, sandbox):
    """A 27 MB file is over Exchange's default 35 MB once base64-encoded: the product (whose
    MESSAGE_MAX_BYTES is that default) refuses as soon as it knows the size, before the
    upload, and leaves no draft."""
    since = last_seq(sandbox)
    url = f"{sandbox.url}/_sandbox/files/big.pdf?size={27 * MB}&seed=1"
    body = mail("contoso.test", attachments=[{"name": "big.pdf", "url": url}])
    resp = fresh_devhost.post("/api/mail/send", json=body)

    assert resp.status_code == 413, resp.text
    error = resp.json()["error"]
    assert error["code"] == "payload_too_large"
    assert "35.0 MB" in error["message"] and "base64" in error["message"]
    writes = graph_writes(sandbox, since)
    assert not any("createUploadSession" in w or w.startswith("PUT") for w in writes), writes
    boxes = Mailboxes(sandbox.url, sandbox.ca)
    assert boxes.messages(ADMIN, "drafts", body["subject"]) == []


def test_exchanges_own_size_refusal_is_the_same_clear_413(fresh_devhost, sandbox):
    """The tenant's limit is lower than the product's setting (the sandbox mailbox at 2 MB):
    Exchange answers ErrorMessageSizeExceeded and the product maps it to payload_too_large."""
    sandbox.control("PATCH", "limits", json={"mailboxMaxSendSizeBytes": {ADMIN: 2 * MB}})
    url = f"{sandbox.url}/_sandbox/files/plan.pdf?size={4 * MB}&seed=2"
    body = mail("contoso.test", attachments=[{"name": "plan.pdf", "url": url}])
    resp = fresh_devhost.post("/api/mail/send", json=body)

    assert resp.status_code == 413, resp.text
    error = resp.json()["error"]
    assert error["code"] == "payload_too_large"
    assert error["graph"]["code"] == "ErrorMessageSizeExceeded"
    assert "maximum message size" in error["message"]
    boxes = Mailboxes(sandbox.url, sandbox.ca)
    assert boxes.messages(ADMIN, "drafts", body["subject"]) == []
    assert body["subject"] not in sent_items_subjects(sandbox, ADMIN)


def test_a_delegated_large_attachment_in_a_shared_mailbox_is_a_clear_access_denied(
    fresh_devhost, sandbox
):
    """known-issues.md: with delegated permissions createUploadSession works only in the
    signed-in user's own mailbox. The service account (Full Access + Send As on administratie)
    cannot attach a 4 MB file there; the product says why and what to do, and leaves no
    draft."""
    name = f"sa-{uuid.uuid4().hex[:8]}.contoso.test"
    add_service_account(fresh_devhost, name)
    rc, out, err, _ = authenticate_with_device_code(
        fresh_devhost, sandbox, name, "svc-docuflow@contoso.test"
    )
    assert rc == 0, out + err
    scan = base64.b64encode(b"%PDF" * MB).decode()  # 4 MB: over 3 MB, an upload session
    body = mail(name, attachments=[{"name": "scan.pdf", "contentBytes": scan}])
    resp = fresh_devhost.post("/api/mail/send", json=body)

    assert resp.status_code == 403, resp.text
    error = resp.json()["error"]
    assert error["code"] == "access_denied"
    assert "own mailbox" in error["message"] and "app connection" in error["message"]
    boxes = Mailboxes(sandbox.url, sandbox.ca)
    assert boxes.messages(ADMIN, "drafts", body["subject"]) == []
