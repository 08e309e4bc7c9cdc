"""send / move / draft called directly against the sandbox (no devhost): real Graph semantics."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from sandbox.files import expected_bytes
from shared.api.validation import decode
from shared.errors import (
    FolderNotFound,
    GraphUnavailable,
    MessageNotFound,
    SenderNotAllowed,
    ValidationFailed,
)
from shared.models import DraftRequest, MoveRequest, SendRequest
from shared.operations import direct as operations
from tests.conftest import q
from tests.functional.conftest import CONNECTION, Ops, until

ADMIN = "administratie@contoso.test"
ANNA = "anna@contoso.test"
BRAM = "bram@contoso.test"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def send_request(**fields) -> SendRequest:
    body = {"connection": CONNECTION, "from": ADMIN, "to": [ANNA], "subject": "s"}
    body.update(fields)
    return decode(SendRequest, json.dumps(body).encode())


def find(ops: Ops, mailbox: str, folder: str, subject: str) -> list[dict]:
    return [m for m in ops.folder_messages(mailbox, folder) if m.get("subject") == subject]


def attachments_of(ops: Ops, mailbox: str, message_id: str) -> dict[str, bytes]:
    items = ops.graph_get(f"users/{mailbox}/messages/{q(message_id)}/attachments")["value"]
    out = {}
    for item in items:
        data = item.get("contentBytes")
        if data is None:
            full = ops.graph_get(
                f"users/{mailbox}/messages/{q(message_id)}/attachments/{q(item['id'])}"
            )
            data = full["contentBytes"]
        out[item["name"]] = base64.b64decode(data)
    return out


def test_send_as_shared_mailbox_lands_in_its_sent_items_and_recipients_inboxes(ops: Ops):
    subject = f"full {uuid.uuid4()}"
    request = send_request(
        subject=subject,
        to=[{"address": ANNA, "name": "Anna"}],
        cc=[BRAM],
        bcc=["svc-docuflow@contoso.test"],
        replyTo=["noreply@contoso.test"],
        body={"contentType": "html", "content": '<p>Hi <img src="cid:logo"></p>'},
        importance="high",
        headers={"x-docuflow-case": "42"},
        attachments=[
            {
                "name": "logo.png",
                "contentType": "image/png",
                "contentBytes": base64.b64encode(PNG).decode(),
                "isInline": True,
                "contentId": "logo",
            },
            {
                "name": "note.txt",
                "contentType": "text/plain",
                "contentBytes": base64.b64encode(b"hello").decode(),
            },
        ],
    )
    result = operations.send(request, ops.context())
    assert result.status == "sent" and result.message_id
    sent = until(lambda: find(ops, ADMIN, "sentitems", subject))
    assert len(sent) == 1
    assert find(ops, "svc-docuflow@contoso.test", "sentitems", subject) == []
    inbox = until(lambda: find(ops, ANNA, "inbox", subject))
    assert len(inbox) == 1 and until(lambda: find(ops, BRAM, "inbox", subject))
    assert until(lambda: find(ops, "svc-docuflow@contoso.test", "inbox", subject))
    msg = ops.graph_get(f"users/{ANNA}/messages/{q(inbox[0]['id'])}")
    assert msg["importance"] == "high"
    assert msg["from"]["emailAddress"]["address"].lower() == ADMIN
    assert msg["replyTo"][0]["emailAddress"]["address"] == "noreply@contoso.test"
    assert msg["ccRecipients"][0]["emailAddress"]["address"] == BRAM
    assert msg["body"]["contentType"].lower() == "html" and "cid:logo" in msg["body"]["content"]
    # Graph returns internetMessageHeaders only when selected.
    selected = ops.graph_get(
        f"users/{ANNA}/messages/{q(inbox[0]['id'])}", **{"$select": "internetMessageHeaders"}
    )
    headers = {h["name"].lower(): h["value"] for h in selected["internetMessageHeaders"]}
    assert headers.get("x-docuflow-case") == "42"
    files = attachments_of(ops, ANNA, inbox[0]["id"])
    assert files == {"logo.png": PNG, "note.txt": b"hello"}


def test_large_attachments_by_url_and_base64_arrive_byte_identical_via_upload_session(ops: Ops):
    subject = f"large {uuid.uuid4()}"
    six = expected_bytes("six.bin", 6 * 1024 * 1024, "6")
    request = send_request(
        subject=subject,
        attachments=[
            {"name": "eight.bin", "url": ops.file_url("eight.bin", 8 * 1024 * 1024, "8")},
            {"name": "six.bin", "contentBytes": base64.b64encode(six).decode()},
        ],
    )
    operations.send(request, ops.context())
    inbox = until(lambda: find(ops, ANNA, "inbox", subject))
    files = attachments_of(ops, ANNA, inbox[0]["id"])
    assert files["six.bin"] == six
    assert files["eight.bin"] == expected_bytes("eight.bin", 8 * 1024 * 1024, "8")
    log = ops.sandbox.requests_log()
    assert sum("createUploadSession" in e.get("path", "") for e in log) >= 2


def test_sender_outside_the_allowlist_is_refused_before_graph_sends_anything(ops: Ops):
    with pytest.raises(SenderNotAllowed):
        operations.send(send_request(**{"from": "ceo@fabrikam.test"}), ops.context())


def test_forbidden_attachment_host_is_a_field_error(ops: Ops):
    request = send_request(attachments=[{"name": "x", "url": "https://files.example.org/x"}])
    with pytest.raises(ValidationFailed) as exc:
        operations.send(request, ops.context())
    assert exc.value.details[0].field == "attachments[0].url"


def test_save_to_sent_items_false_keeps_no_copy(ops: Ops):
    subject = f"nocopy {uuid.uuid4()}"
    operations.send(send_request(subject=subject, saveToSentItems=False), ops.context())
    assert until(lambda: find(ops, ANNA, "inbox", subject))
    ops.settle(ADMIN)
    assert find(ops, ADMIN, "sentitems", subject) == []


def test_draft_is_in_drafts_with_web_link_and_conversation(ops: Ops):
    subject = f"draft {uuid.uuid4()}"
    request = decode(
        DraftRequest,
        json.dumps(
            {
                "connection": CONNECTION,
                "from": ADMIN,
                "to": [ANNA],
                "subject": subject,
                "attachments": [{"name": "a.txt", "contentBytes": base64.b64encode(b"a").decode()}],
            }
        ).encode(),
    )
    result = operations.draft(request, ops.context())
    assert result.web_link and result.conversation_id and result.message_id
    drafts = find(ops, ADMIN, "drafts", subject)
    assert len(drafts) == 1 and drafts[0]["id"] == result.message_id
    assert find(ops, ANNA, "inbox", subject) == []


def _deliver(ops: Ops, subject: str) -> dict:
    operations.send(send_request(subject=subject), ops.context())
    return until(lambda: find(ops, ANNA, "inbox", subject))[0]


def test_move_by_internet_message_id_into_a_new_nested_path(ops: Ops):
    subject = f"move {uuid.uuid4()}"
    msg = _deliver(ops, subject)
    imid = ops.graph_get(f"users/{ANNA}/messages/{q(msg['id'])}")["internetMessageId"]
    move = decode(
        MoveRequest,
        json.dumps(
            {
                "connection": CONNECTION,
                "mailbox": ANNA,
                "internetMessageId": imid,
                "destination": "Inbox/Verwerkt/2026",
                "createMissingFolders": True,
            }
        ).encode(),
    )
    result = operations.move(move, ops.context())
    moved = ops.graph_get(f"users/{ANNA}/messages/{q(result.message_id)}")
    assert moved["subject"] == subject and moved["parentFolderId"] == result.destination_folder_id
    inbox = ops.graph_get(f"users/{ANNA}/mailFolders/inbox/childFolders")["value"]
    verwerkt = next(f for f in inbox if f["displayName"] == "Verwerkt")
    children = ops.graph_get(f"users/{ANNA}/mailFolders/{q(verwerkt['id'])}/childFolders")["value"]
    assert [f["id"] for f in children if f["displayName"] == "2026"] == [
        result.destination_folder_id
    ]


def test_move_to_archive_by_id_and_missing_folder_without_create(ops: Ops):
    subject = f"arch {uuid.uuid4()}"
    msg = _deliver(ops, subject)
    base = {"connection": CONNECTION, "mailbox": ANNA, "messageId": msg["id"]}
    with pytest.raises(FolderNotFound):
        operations.move(
            decode(MoveRequest, json.dumps({**base, "destination": "Inbox/Nope"}).encode()),
            ops.context(),
        )
    result = operations.move(
        decode(MoveRequest, json.dumps({**base, "destination": "archive"}).encode()), ops.context()
    )
    assert find(ops, ANNA, "archive", subject)[0]["id"] == result.message_id
    assert find(ops, ANNA, "inbox", subject) == []


def test_move_of_unknown_internet_message_id_is_message_not_found(ops: Ops):
    move = decode(
        MoveRequest,
        json.dumps(
            {
                "connection": CONNECTION,
                "mailbox": ANNA,
                "internetMessageId": "<nope@x>",
                "destination": "archive",
            }
        ).encode(),
    )
    with pytest.raises(MessageNotFound):
        operations.move(move, ops.context())


def test_graph_503_is_retried_within_budget(ops: Ops):
    subject = f"retry {uuid.uuid4()}"
    ops.sandbox.add_fault(
        method="POST",
        path=r"/v1\.0/users/[^/]+/messages$",
        action="status",
        status=503,
        retryAfter=1,
        times=1,
    )
    operations.send(send_request(subject=subject), ops.context())
    assert until(lambda: find(ops, ANNA, "inbox", subject))


def test_graph_503_past_the_budget_is_graph_unavailable_with_retry_after(ops: Ops):
    subject = f"down {uuid.uuid4()}"
    ops.sandbox.add_fault(
        method="POST",
        path=r"/v1\.0/users/[^/]+/messages$",
        action="status",
        status=503,
        retryAfter=4,
        times=10,
    )
    with pytest.raises(GraphUnavailable) as exc:
        operations.send(send_request(subject=subject), ops.context())
    assert exc.value.retry_after and exc.value.retry_after >= 1
    ops.sandbox.clear_faults()
    ops.settle(ADMIN)
    assert find(ops, ADMIN, "sentitems", subject) == []


def test_move_of_a_malformed_message_id_is_a_field_error(ops: Ops):
    move = decode(
        MoveRequest,
        json.dumps(
            {
                "connection": CONNECTION,
                "mailbox": ANNA,
                "messageId": "not-a-graph-id",
                "destination": "archive",
            }
        ).encode(),
    )
    with pytest.raises(ValidationFailed) as exc:
        operations.move(move, ops.context())
    assert [d.field for d in exc.value.details] == ["messageId"]
    assert exc.value.graph.code == "ErrorInvalidIdMalformed"
