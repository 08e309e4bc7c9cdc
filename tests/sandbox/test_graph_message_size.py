"""The whole message's size limit, as Exchange Online applies it.

attachment-createuploadsession.md: "Exchange Online lets administrators customize the message
size limit for Microsoft 365 mailboxes, including any message attachments. By default, this
message size limit is 35 MB" (raisable to 150 MB). Beyond it Exchange answers
ErrorMessageSizeExceeded "The message exceeds the maximum supported size.". The limit applies
to the message as MIME carries it, attachments in base64 (docs/sandbox.md, "Message size"): a
27 MB file is over 35 MB once encoded.
"""

from __future__ import annotations

import base64

import pytest

from tests.conftest import q
from tests.sandbox.graph_client import ADMIN, ANNA, MB, Graph, app_token, draft, rcpt, sent_items

SIZE_ERROR = "ErrorMessageSizeExceeded"


@pytest.fixture
def g(fresh_sandbox) -> Graph:
    return Graph(fresh_sandbox.url, fresh_sandbox.ca, app_token(fresh_sandbox.url))


def limit_admin(sandbox, size: int) -> None:
    sandbox.control("PATCH", "limits", json={"mailboxMaxSendSizeBytes": {ADMIN: size}})


def file_attachment(name: str, size: int) -> dict:
    return {
        "@odata.type": "#microsoft.graph.fileAttachment",
        "name": name,
        "contentBytes": base64.b64encode(b"\0" * size).decode(),
    }


def session(g: Graph, message_id: str, size: int):
    return g.post(
        f"users/{ADMIN}/messages/{q(message_id)}/attachments/createUploadSession",
        json={"AttachmentItem": {"attachmentType": "file", "name": "big.pdf", "size": size}},
    )


def error_of(resp) -> str:
    return resp.json()["error"]["code"]


def test_the_default_limit_is_35_mb_with_attachments_counted_in_base64(g, fresh_sandbox):
    assert fresh_sandbox.limits()["maxMessageSizeBytes"] == 35 * MB
    msg = draft(g)
    over = session(g, msg["id"], 27 * MB)  # 27 MB is about 36.6 MB in base64
    assert over.status_code == 400 and error_of(over) == SIZE_ERROR
    assert over.json()["error"]["message"] == "The message exceeds the maximum supported size."
    assert session(g, msg["id"], 25 * MB).status_code == 201


def test_attachments_that_grow_a_draft_past_the_mailbox_limit_are_refused(g, fresh_sandbox):
    limit_admin(fresh_sandbox, 5 * MB)
    msg = draft(g)
    base = f"users/{ADMIN}/messages/{q(msg['id'])}/attachments"
    assert g.post(base, json=file_attachment("a.bin", 2 * MB)).status_code == 201
    second = g.post(base, json=file_attachment("b.bin", 2 * MB))
    assert second.status_code == 400 and error_of(second) == SIZE_ERROR
    assert [a["name"] for a in g.ok("GET", base)["value"]] == ["a.bin"]
    grown = g.call(
        "PATCH",
        f"users/{ADMIN}/messages/{q(msg['id'])}",
        json={"body": {"contentType": "text", "content": "x" * (3 * MB)}},
    )
    assert grown.status_code == 400 and error_of(grown) == SIZE_ERROR


def test_send_mail_over_the_limit_is_refused_and_nothing_goes_out(g, fresh_sandbox):
    limit_admin(fresh_sandbox, 1 * MB)
    message = {
        "subject": "te groot",
        "toRecipients": [rcpt(ANNA)],
        "attachments": [file_attachment("a.bin", 800 * 1024)],  # 1.07 MB in base64
    }
    resp = g.post(f"users/{ADMIN}/sendMail", json={"message": message})
    assert resp.status_code == 400 and error_of(resp) == SIZE_ERROR
    assert g.ok("GET", f"users/{ANNA}/mailFolders/inbox/messages")["value"] == []
    assert g.ok("GET", f"users/{ADMIN}/mailFolders/outbox/messages")["value"] == []


def test_sending_a_draft_over_the_limit_is_refused_and_the_draft_stays(g, fresh_sandbox):
    msg = draft(g, attachments=[file_attachment("a.bin", 900 * 1024)])
    limit_admin(fresh_sandbox, 1 * MB)  # the admin lowered MaxSendSize meanwhile
    resp = g.post(f"users/{ADMIN}/messages/{q(msg['id'])}/send")
    assert resp.status_code == 400 and error_of(resp) == SIZE_ERROR
    assert g.ok("GET", f"users/{ADMIN}/messages/{q(msg['id'])}")["isDraft"] is True
    assert sent_items(g, ADMIN) == []
