"""Send through the devhost over HTTP, checked in the sandbox's mailboxes."""

from __future__ import annotations

import base64
import uuid

import pytest

from sandbox.files import expected_bytes
from tests.conftest import q
from tests.functional.mailboxes import Mailboxes, until

ADMIN = "administratie@contoso.test"
ANNA = "anna@contoso.test"
BRAM = "bram@contoso.test"
SVC = "svc-docuflow@contoso.test"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@pytest.fixture
def host(fresh_devhost):
    """The devhost with the sandbox reset to its seed and the connection stored."""
    return fresh_devhost


@pytest.fixture
def boxes(host, sandbox) -> Mailboxes:
    return Mailboxes(sandbox.url, sandbox.ca)


def mail(**fields) -> dict:
    body = {
        "connection": "contoso.test",
        "from": ADMIN,
        "to": [ANNA],
        "subject": f"e2e {uuid.uuid4()}",
        "body": {"contentType": "text", "content": "Hoi"},
    }
    body.update(fields)
    return body


def test_send_as_shared_mailbox_with_everything_intact(host, boxes):
    body = mail(
        to=[{"address": ANNA, "name": "Anna"}],
        cc=[BRAM],
        bcc=[SVC],
        replyTo=["noreply@contoso.test"],
        body={"contentType": "html", "content": '<p>Factuur <img src="cid:logo"></p>'},
        attachments=[
            {
                "name": "logo.png",
                "contentType": "image/png",
                "isInline": True,
                "contentId": "logo",
                "contentBytes": base64.b64encode(PNG).decode(),
            },
            {
                "name": "factuur.txt",
                "contentType": "text/plain",
                "contentBytes": base64.b64encode(b"bedrag: 42").decode(),
            },
        ],
    )
    resp = host.post("/api/mail/send", json=body)
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["status"] == "sent" and answer["operationId"] and answer["messageId"]
    subject = body["subject"]
    assert len(until(lambda: boxes.messages(ADMIN, "sentitems", subject))) == 1
    assert boxes.messages(SVC, "sentitems", subject) == []
    for who in (ANNA, BRAM, SVC):
        assert until(lambda who=who: boxes.messages(who, "inbox", subject)), who
    received = boxes.messages(ANNA, "inbox", subject)[0]
    msg = boxes.get(f"users/{ANNA}/messages/{q(received['id'])}")
    assert msg["from"]["emailAddress"]["address"].lower() == ADMIN
    assert msg["ccRecipients"][0]["emailAddress"]["address"] == BRAM
    assert msg["replyTo"][0]["emailAddress"]["address"] == "noreply@contoso.test"
    assert "cid:logo" in msg["body"]["content"]
    assert boxes.attachments(ANNA, received["id"]) == {
        "logo.png": PNG,
        "factuur.txt": b"bedrag: 42",
    }


def test_8mb_by_url_and_6mb_by_base64_arrive_byte_identical(host, boxes, sandbox):
    eight = 8 * 1024 * 1024
    six = expected_bytes("six.bin", 6 * 1024 * 1024, "6")
    body = mail(
        attachments=[
            {
                "name": "eight.bin",
                "url": f"{sandbox.url}/_sandbox/files/eight.bin?size={eight}&seed=8",
            },
            {"name": "six.bin", "contentBytes": base64.b64encode(six).decode()},
        ]
    )
    resp = host.post("/api/mail/send", json=body)
    assert resp.status_code == 200, resp.text
    received = until(lambda: boxes.messages(ANNA, "inbox", body["subject"]))
    files = boxes.attachments(ANNA, received[0]["id"])
    assert files["six.bin"] == six
    assert files["eight.bin"] == expected_bytes("eight.bin", eight, "8")
    uploads = [e for e in sandbox.requests_log() if "createUploadSession" in e.get("path", "")]
    assert len(uploads) >= 2


def test_health_and_openapi_are_anonymous(host):
    import requests

    health = requests.get(f"{host.url}/api/health", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    doc = requests.get(f"{host.url}/api/openapi.json", timeout=10).json()
    assert doc["openapi"].startswith("3.1") and "/mail/send" in doc["paths"]


def test_one_log_line_per_operation_with_masked_addresses(host):
    body = mail()
    resp = host.post("/api/mail/send", json=body)
    assert resp.status_code == 200, resp.text
    operation_id = resp.json()["operationId"]
    line = until(
        lambda: next(
            (x for x in host.logs().splitlines() if operation_id in x and '"event"' in x), None
        )
    )
    assert line, host.logs()[-2000:]
    assert '"outcome":"succeeded"' in line and '"operation":"send"' in line
    assert '"from":"a***@contoso.test"' in line and '"graphRequestIds":["' in line
    assert ADMIN not in host.logs() and body["subject"] not in host.logs()
