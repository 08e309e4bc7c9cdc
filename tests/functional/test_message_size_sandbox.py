"""The whole message's size limit against the sandbox: the product refuses what it can measure
before anything is uploaded (413 payload_too_large), and answers Exchange's
ErrorMessageSizeExceeded with the same clear error when only the tenant's lower limit knows."""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid

import pytest

from shared.api.validation import decode
from shared.errors import PayloadTooLarge, to_http
from shared.models import SendRequest
from shared.operations import direct as operations
from tests.functional.conftest import CONNECTION, Ops

ADMIN = "administratie@contoso.test"
ANNA = "anna@contoso.test"
MB = 1024 * 1024


def send_request(subject: str, attachments: list[dict]) -> SendRequest:
    body = {
        "connection": CONNECTION,
        "from": ADMIN,
        "to": [ANNA],
        "subject": subject,
        "attachments": attachments,
    }
    return decode(SendRequest, json.dumps(body).encode())


def limited(ops: Ops, message_max_bytes: int):
    ctx = ops.context()
    ctx.settings = dataclasses.replace(ops.settings, message_max_bytes=message_max_bytes)
    return ctx


def graph_writes(ops: Ops, since: int) -> list[str]:
    log = ops.sandbox.control("GET", "requests", params={"since": since, "limit": 5000}).json()
    return [
        f"{e['method']} {e['path']}"
        for e in log["value"]
        if e["method"] in ("POST", "PUT") and e["path"].startswith(("/v1.0/", "/upload/"))
    ]


def drafts(ops: Ops, subject: str) -> list[dict]:
    return [m for m in ops.folder_messages(ADMIN, "drafts") if m.get("subject") == subject]


def test_base64_attachments_over_the_limit_are_refused_before_graph_sees_anything(ops: Ops):
    since = ops.sandbox.control("GET", "requests", params={"limit": 1}).json()["lastSeq"]
    data = base64.b64encode(b"\0" * (800 * 1024)).decode()  # about 1.07 MB as MIME
    request = send_request("te groot", [{"name": "a.bin", "contentBytes": data}])
    with pytest.raises(PayloadTooLarge) as info:
        operations.send(request, limited(ops, 1 * MB))
    status, _, body = to_http(info.value)
    assert status == 413 and body["error"]["code"] == "payload_too_large"
    assert "MESSAGE_MAX_BYTES" in body["error"]["message"]
    assert graph_writes(ops, since) == []


def test_a_url_attachment_over_the_limit_stops_before_its_upload_and_leaves_no_draft(ops: Ops):
    since = ops.sandbox.control("GET", "requests", params={"limit": 1}).json()["lastSeq"]
    subject = f"url te groot {uuid.uuid4()}"
    request = send_request(subject, [{"name": "big.pdf", "url": ops.file_url("big.pdf", 6 * MB)}])
    with pytest.raises(PayloadTooLarge):
        operations.send(request, limited(ops, 5 * MB))
    writes = graph_writes(ops, since)
    assert not any("createUploadSession" in w or w.startswith("PUT") for w in writes), writes
    assert drafts(ops, subject) == []


def test_exchanges_own_refusal_is_the_same_clear_413_and_leaves_no_draft(ops: Ops):
    """Our limit (35 MB) is above the tenant's (the sandbox mailbox at 2 MB): Graph answers
    ErrorMessageSizeExceeded, which the product maps to payload_too_large."""
    ops.sandbox.control("PATCH", "limits", json={"mailboxMaxSendSizeBytes": {ADMIN: 2 * MB}})
    subject = f"tenant te groot {uuid.uuid4()}"
    request = send_request(subject, [{"name": "big.pdf", "url": ops.file_url("big.pdf", 4 * MB)}])
    with pytest.raises(PayloadTooLarge) as info:
        operations.send(request, ops.context())
    status, _, body = to_http(info.value)
    assert status == 413
    assert body["error"]["graph"]["code"] == "ErrorMessageSizeExceeded"
    assert "maximum message size" in body["error"]["message"]
    assert drafts(ops, subject) == []
