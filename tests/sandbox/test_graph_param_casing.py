"""Action parameters are read case-insensitively, as Graph reads them: msgraph-sdk-python's
generated request bodies send "Message", "SaveToSentItems", "DestinationId" and
"AttachmentItem" (user-sendmail.md, message-move.md, attachment-createuploadsession.md name
them message, saveToSentItems, destinationId, AttachmentItem)."""

from __future__ import annotations

import pytest

from tests.conftest import q
from tests.sandbox.graph_client import (
    ADMIN,
    ANNA,
    MB,
    Graph,
    app_token,
    draft,
    eventually,
    rcpt,
    sent_items,
)


@pytest.fixture
def g(fresh_sandbox) -> Graph:
    return Graph(fresh_sandbox.url, fresh_sandbox.ca, app_token(fresh_sandbox.url))


def test_send_mail_with_pascal_case_parameters_is_accepted_and_honoured(g, fresh_sandbox):
    message = {
        "subject": "pascal case",
        "body": {"contentType": "text", "content": "as msgraph-sdk writes it"},
        "toRecipients": [{"emailAddress": {"address": ANNA}}],
    }
    g.ok("POST", f"users/{ADMIN}/sendMail", 202, json={"Message": message})
    g.ok(
        "POST", f"users/{ADMIN}/sendMail", 202, json={"Message": message, "SaveToSentItems": False}
    )
    inbox = f"users/{ANNA}/mailFolders/inbox/messages"
    transit = fresh_sandbox.transit_seconds()
    assert eventually(lambda: len(g.ok("GET", inbox)["value"]) == 2, transit)
    copies = [m for m in sent_items(g, ADMIN) if m["subject"] == "pascal case"]
    assert len(copies) == 1  # the second one asked for no copy, and got none


@pytest.mark.parametrize("name", ["DestinationId", "destinationid", "DESTINATIONID"])
def test_move_and_copy_read_destination_id_in_any_case(g, name):
    msg = draft(g)
    copied = g.ok(
        "POST", f"users/{ADMIN}/messages/{q(msg['id'])}/copy", 201, json={name: "archive"}
    )
    moved = g.ok("POST", f"users/{ADMIN}/messages/{q(msg['id'])}/move", 201, json={name: "inbox"})
    archive = g.ok("GET", f"users/{ADMIN}/mailFolders/archive")
    inbox = g.ok("GET", f"users/{ADMIN}/mailFolders/inbox")
    assert copied["parentFolderId"] == archive["id"]
    assert moved["parentFolderId"] == inbox["id"]


@pytest.mark.parametrize("name", ["AttachmentItem", "attachmentItem", "attachmentitem"])
def test_create_upload_session_reads_attachment_item_in_any_case(g, name):
    msg = draft(g)
    item = {"attachmentType": "file", "name": "big.pdf", "size": 4 * MB}
    session = g.ok(
        "POST",
        f"users/{ADMIN}/messages/{q(msg['id'])}/attachments/createUploadSession",
        201,
        json={name: item},
    )
    assert session["nextExpectedRanges"] == ["0-"]


def test_an_unknown_or_doubled_action_parameter_is_400(g):
    msg = draft(g)
    move = f"users/{ADMIN}/messages/{q(msg['id'])}/move"
    assert g.post(move, json={"destination": "archive"}).status_code == 400
    doubled = g.post(move, json={"destinationId": "archive", "DestinationId": "inbox"})
    assert doubled.status_code == 400
    send = g.post(
        f"users/{ADMIN}/sendMail",
        json={"message": {"subject": "x", "toRecipients": [rcpt(ANNA)]}, "saveCopy": False},
    )
    assert send.status_code == 400
