"""Queued replies, reply-alls and forwards (mode async) through the devhost, Azurite and the
sandbox, under dropped answers (accept_then_drop on /send) and throttling (429 on
createReply/createReplyAll/createForward): every answer arrives exactly once, in the original's
conversation. And a reviewed draft sent by id twice under one idempotency key is one mail.

Connection: `contoso.test` (app mode): the replies carry a 6 MB PDF by URL, which goes up
through an upload session in administratie's mailbox (Graph allows that to a delegated
sign-in only in its own mailbox).
"""

from __future__ import annotations

import uuid

import pytest

from sandbox.files import expected_bytes
from tests.conftest import q
from tests.e2e.background_support import (
    bg_fixture,  # noqa: F401 - provides the `bg` fixture to this module
    finished,
    sent_copies,
    wait_status,
)
from tests.functional.mailboxes import Mailboxes, until

pytestmark = pytest.mark.timeout(300)

ADMIN = "administratie@contoso.test"
ANNA = "anna@contoso.test"
BRAM = "bram@contoso.test"
CARLA = "carla@contoso.test"
SIX_MB = 6 * 1024 * 1024
SEND_STEP = r"/users/[^/]+/messages/[^/]+/send$"


@pytest.fixture
def boxes(sandbox) -> Mailboxes:
    return Mailboxes(sandbox.url, sandbox.ca)


def arrived(boxes: Mailboxes, sandbox, mailbox: str, subject: str) -> dict:
    found = until(lambda: boxes.messages(mailbox, "inbox", subject), sandbox.transit_seconds())
    assert found, f"{subject!r} never reached {mailbox}"
    return found[0]


def count(boxes: Mailboxes, mailbox: str, subject: str) -> int:
    return len(boxes.messages(mailbox, "inbox", subject))


def test_async_answers_arrive_exactly_once_under_dropped_answers_and_429s(bg, boxes, sandbox):
    subject = f"Vraag {uuid.uuid4().hex[:6]}"
    sent = bg.post(
        "/api/mail/send",
        json={"connection": "contoso.test", "from": ANNA, "to": [ADMIN], "cc": [BRAM],
              "subject": subject, "body": {"contentType": "text", "content": "Graag de PDF."}},
    )  # fmt: skip
    assert sent.status_code == 200, sent.text
    original = arrived(boxes, sandbox, ADMIN, subject)
    pdf = {
        "name": "offerte.pdf",
        "url": f"{sandbox.url}/_sandbox/files/offerte.pdf?size={SIX_MB}&seed=7",
    }
    base = {"connection": "contoso.test", "mailbox": ADMIN, "mode": "async"}
    requests = {
        "reply": [
            {**base, "messageId": original["id"], "subject": f"R{i} {subject}",
             "comment": "Hierbij.", "attachments": [pdf]}
            for i in range(2)
        ],
        "reply-all": [
            {**base, "internetMessageId": original["internetMessageId"], "replyAll": True,
             "subject": f"A{i} {subject}", "attachments": [pdf]}
            for i in range(2)
        ],
        "forward": [
            {**base, "messageId": original["id"], "to": [CARLA], "subject": f"F{i} {subject}",
             "attachments": [{"message": {"mailbox": ADMIN, "messageId": original["id"]}}]}
            for i in range(2)
        ],
    }  # fmt: skip
    faults = [
        {"method": "POST", "path": SEND_STEP, "action": "accept_then_drop", "times": 3},
        *(
            {"method": "POST", "path": rf"/messages/[^/]+/{action}$", "action": "status",
             "status": 429, "retryAfter": 1, "times": 2}
            for action in ("createReply", "createReplyAll", "createForward")
        ),
    ]  # fmt: skip
    for spec in faults:
        sandbox.add_fault(**spec)
    try:
        ops: dict[str, str] = {}
        for kind, bodies in requests.items():
            route = "/api/mail/forward" if kind == "forward" else "/api/mail/reply"
            for body in bodies:
                resp = bg.post(route, json=body)
                assert resp.status_code == 202, resp.text
                ops[body["subject"]] = resp.json()["operationId"]
        statuses = {s: wait_status(bg, op, finished, timeout=180) for s, op in ops.items()}
    finally:
        applied = {
            f["path"]: f["applied"] for f in sandbox.control("GET", "faults").json()["value"]
        }
        sandbox.clear_faults()
    assert {s: st["status"] for s, st in statuses.items()} == dict.fromkeys(ops, "succeeded")
    assert applied[SEND_STEP] == 3 and all(n == 2 for n in applied.values() if n != 3), applied

    copies = sent_copies(boxes, ADMIN)
    assert {s: copies.get(op) for s, op in ops.items()} == dict.fromkeys(ops, 1)
    for s, status in statuses.items():
        assert status["result"]["conversationId"] == original["conversationId"], s
    boxes.settle(ADMIN)
    for s in ops:
        expected = {"R": {ANNA: 1}, "A": {ANNA: 1, BRAM: 1, ADMIN: 0}, "F": {CARLA: 1, ANNA: 0}}
        for who, n in expected[s[0]].items():
            assert count(boxes, who, s) == n, (s, who)
    reply = arrived(boxes, sandbox, ANNA, f"R0 {subject}")
    assert boxes.attachments(ANNA, reply["id"]) == {
        "offerte.pdf": expected_bytes("offerte.pdf", SIX_MB, "7")
    }
    forward = arrived(boxes, sandbox, CARLA, f"F1 {subject}")
    listed = boxes.get(f"users/{CARLA}/messages/{q(forward['id'])}/attachments")["value"]
    assert [a["@odata.type"] for a in listed] == ["#microsoft.graph.itemAttachment"]
    attempts = {s: st["attempts"] for s, st in statuses.items()}
    print(f"\nasync answers under faults: {len(ops)} operations, attempts {attempts}, "
          f"faults applied {applied}")  # fmt: skip


def test_a_reviewed_draft_sent_twice_with_one_key_is_one_mail(bg, boxes, sandbox):
    subject = f"Beoordeeld {uuid.uuid4().hex[:6]}"
    made = bg.post(
        "/api/mail/draft",
        json={"connection": "contoso.test", "from": ADMIN, "to": [ANNA], "subject": subject,
              "body": {"contentType": "text", "content": "Concept"}},
    )  # fmt: skip
    assert made.status_code == 201, made.text
    draft_id = made.json()["messageId"]
    key = f"review-{uuid.uuid4()}"
    body = {
        "connection": "contoso.test",
        "from": ADMIN,
        "draftId": draft_id,
        "categories": ["Goedgekeurd"],
        "mode": "async",
    }
    sandbox.add_fault(method="POST", path=SEND_STEP, action="accept_then_drop", times=1)
    try:
        first = bg.post("/api/mail/send", json=body, headers={"Idempotency-Key": key})
        second = bg.post("/api/mail/send", json=body, headers={"Idempotency-Key": key})
        assert first.status_code == second.status_code == 202, second.text
        op = first.json()["operationId"]
        assert second.json()["operationId"] == op and second.json()["duplicate"] is True
        status = wait_status(bg, op, finished, timeout=120)
    finally:
        sandbox.clear_faults()
    assert status["status"] == "succeeded", status
    assert status["result"]["messageId"] == draft_id
    assert sent_copies(boxes, ADMIN).get(op) == 1
    boxes.settle(ADMIN)
    assert count(boxes, ANNA, subject) == 1
    copy = boxes.get(f"users/{ADMIN}/messages/{q(draft_id)}")
    assert copy["isDraft"] is False and copy["categories"] == ["Goedgekeurd"]
    # A third submission without the key (sync) finds no draft to send: 409, nothing sent.
    again = bg.post("/api/mail/send", json={**body, "mode": "sync"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "draft_already_sent"
    boxes.settle(ADMIN)
    assert count(boxes, ANNA, subject) == 1
