"""Move and draft through the devhost over HTTP."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import q
from tests.functional.mailboxes import Mailboxes, until

ADMIN = "administratie@contoso.test"
ANNA = "anna@contoso.test"


@pytest.fixture
def host(fresh_devhost):
    """The devhost with the sandbox reset to its seed and the connection stored."""
    return fresh_devhost


def deliver(host, boxes: Mailboxes) -> dict:
    subject = f"e2e-move {uuid.uuid4()}"
    resp = host.post(
        "/api/mail/send",
        json={"connection": "contoso.test", "from": ADMIN, "to": [ANNA], "subject": subject},
    )
    assert resp.status_code == 200, resp.text
    return until(lambda: boxes.messages(ANNA, "inbox", subject))[0]


def test_move_by_internet_message_id_into_new_nested_path_then_to_archive(host, sandbox):
    boxes = Mailboxes(sandbox.url, sandbox.ca)
    received = deliver(host, boxes)
    imid = boxes.get(f"users/{ANNA}/messages/{q(received['id'])}")["internetMessageId"]
    resp = host.post(
        "/api/mail/move",
        json={
            "connection": "contoso.test",
            "mailbox": ANNA,
            "internetMessageId": imid,
            "destination": "Inbox/Verwerkt/2026",
            "createMissingFolders": True,
        },
    )
    assert resp.status_code == 200, resp.text
    moved = resp.json()
    assert boxes.messages(ANNA, moved["destinationFolderId"], received["subject"])
    resp = host.post(
        "/api/mail/move",
        json={
            "connection": "contoso.test",
            "mailbox": ANNA,
            "messageId": moved["messageId"],
            "destination": "archive",
        },
    )
    assert resp.status_code == 200, resp.text
    assert boxes.messages(ANNA, "archive", received["subject"])
    assert boxes.messages(ANNA, moved["destinationFolderId"], received["subject"]) == []


def test_draft_returns_web_link_and_is_in_drafts(host, sandbox):
    boxes = Mailboxes(sandbox.url, sandbox.ca)
    subject = f"e2e-draft {uuid.uuid4()}"
    resp = host.post(
        "/api/mail/draft",
        json={"connection": "contoso.test", "from": ADMIN, "to": [ANNA], "subject": subject},
    )
    assert resp.status_code == 201, resp.text
    answer = resp.json()
    assert answer["webLink"] and answer["conversationId"]
    drafts = boxes.messages(ADMIN, "drafts", subject)
    assert [d["id"] for d in drafts] == [answer["messageId"]]
