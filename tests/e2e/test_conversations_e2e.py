"""Conversations through the devhost, Azurite and the sandbox: reply, reply-all and forward from
the shared mailbox in the original's thread, send on behalf, reviewed drafts, marks, and the
bad input each new field refuses. Asserts what lands in which mailbox.

Connections: `contoso.test` (app mode) for the shared mailbox's answers — the 6 MB PDF goes up
through an upload session in administratie's mailbox, which Graph allows a delegated sign-in
only in its own mailbox (known issue "Attaching large files to messages with delegated
permissions can fail") — and service-account connections signed in (device code) as anna and
as bram for Send on Behalf, the way a person with that grant sends.
"""

from __future__ import annotations

import base64
import uuid

import pytest

from sandbox.files import expected_bytes
from tests.conftest import q
from tests.e2e.connections_kit import add_service_account, authenticate_with_device_code
from tests.functional.mailboxes import Mailboxes, until

pytestmark = pytest.mark.timeout(300)

ADMIN = "administratie@contoso.test"
ANNA = "anna@contoso.test"
BRAM = "bram@contoso.test"
CARLA = "carla@contoso.test"
SIX_MB = 6 * 1024 * 1024


@pytest.fixture
def host(fresh_devhost):
    return fresh_devhost


@pytest.fixture
def boxes(host, sandbox) -> Mailboxes:
    return Mailboxes(sandbox.url, sandbox.ca)


def ok(resp, status: int = 200) -> dict:
    assert resp.status_code == status, resp.text
    return resp.json()


def arrived(boxes: Mailboxes, sandbox, mailbox: str, subject: str, folder="inbox") -> dict:
    found = until(lambda: boxes.messages(mailbox, folder, subject), sandbox.transit_seconds())
    assert found, f"{subject!r} never reached {mailbox}'s {folder}"
    assert len(found) == 1, found
    return found[0]


def header(boxes: Mailboxes, mailbox: str, message_id: str, name: str) -> str | None:
    msg = boxes.get(
        f"users/{mailbox}/messages/{q(message_id)}", **{"$select": "internetMessageHeaders"}
    )
    return next((h["value"] for h in msg["internetMessageHeaders"] if h["name"] == name), None)


def filed_original(host, boxes, sandbox, subject: str) -> dict:
    """anna writes to administratie (cc bram); DocuFlow files it in a case folder; the filed
    copy in administratie's mailbox."""
    ok(
        host.post(
            "/api/mail/send",
            json={
                "connection": "contoso.test",
                "from": ANNA,
                "to": [ADMIN],
                "cc": [BRAM],
                "subject": subject,
                "body": {"contentType": "text", "content": "Mag ik de getekende offerte?"},
            },
        )
    )
    received = arrived(boxes, sandbox, ADMIN, subject)
    moved = ok(
        host.post(
            "/api/mail/move",
            json={
                "connection": "contoso.test",
                "mailbox": ADMIN,
                "messageId": received["id"],
                "destination": "Inbox/Dossiers/2026-042",
                "createMissingFolders": True,
            },
        )
    )
    return boxes.get(f"users/{ADMIN}/messages/{q(moved['messageId'])}")


def test_reply_with_a_6_mb_pdf_reply_all_and_forward_stay_in_the_thread(host, boxes, sandbox):
    subject = f"Offerte {uuid.uuid4().hex[:6]}"
    original = filed_original(host, boxes, sandbox, subject)
    pdf_url = f"{sandbox.url}/_sandbox/files/offerte.pdf?size={SIX_MB}&seed=42"

    answer = ok(
        host.post(
            "/api/mail/reply",
            json={
                "connection": "contoso.test",
                "mailbox": ADMIN,
                "messageId": original["id"],
                "comment": "Hierbij de getekende offerte.",
                "attachments": [{"name": "offerte.pdf", "contentType": "application/pdf",
                                 "url": pdf_url}],
            },
        )
    )  # fmt: skip
    assert answer["status"] == "sent" and answer["conversationId"] == original["conversationId"]
    got = arrived(boxes, sandbox, ANNA, f"RE: {subject}")
    assert got["conversationId"] == original["conversationId"]
    assert header(boxes, ANNA, got["id"], "In-Reply-To") == original["internetMessageId"]
    files = boxes.attachments(ANNA, got["id"])
    assert files == {"offerte.pdf": expected_bytes("offerte.pdf", SIX_MB, "42")}
    copy = arrived(boxes, sandbox, ADMIN, f"RE: {subject}", "sentitems")
    assert copy["id"] == answer["messageId"]
    # anna's own Sent Items copy of the original and the answer form one thread.
    sent = arrived(boxes, sandbox, ANNA, subject, "sentitems")
    assert sent["conversationId"] == got["conversationId"]
    page = sandbox.http.get(f"{sandbox.url}/ui/messages/{q(got['id'])}", timeout=30).text
    assert "<h2>Conversation</h2>" in page and page.count("/ui/messages/") >= 2

    ok(
        host.post(
            "/api/mail/reply",
            json={
                "connection": "contoso.test",
                "mailbox": ADMIN,
                "internetMessageId": original["internetMessageId"],
                "replyAll": True,
                "subject": f"Allen: {subject}",
                "body": {"contentType": "html", "content": "<p>Voor iedereen</p>"},
            },
        )
    )
    for who in (ANNA, BRAM):
        assert (
            arrived(boxes, sandbox, who, f"Allen: {subject}")["conversationId"]
            == (original["conversationId"])
        )
    boxes.settle(ADMIN)
    assert boxes.messages(ADMIN, "inbox", f"Allen: {subject}") == []  # the replier is left out

    forwarded = ok(
        host.post(
            "/api/mail/forward",
            json={
                "connection": "contoso.test",
                "mailbox": ADMIN,
                "messageId": original["id"],
                "to": [CARLA],
                "comment": "Ter info, met de oorspronkelijke vraag.",
                "attachments": [{"message": {"mailbox": ADMIN, "messageId": original["id"]},
                                 "name": "Vraag van Anna"}],
            },
        )
    )  # fmt: skip
    fw = arrived(boxes, sandbox, CARLA, f"FW: {subject}")
    assert fw["conversationId"] == forwarded["conversationId"] == original["conversationId"]
    listed = boxes.get(f"users/{CARLA}/messages/{q(fw['id'])}/attachments")["value"]
    assert [(a["name"], a["@odata.type"]) for a in listed] == [
        ("Vraag van Anna", "#microsoft.graph.itemAttachment")
    ]
    item = boxes.get(
        f"users/{CARLA}/messages/{q(fw['id'])}/attachments/{q(listed[0]['id'])}",
        **{"$expand": "microsoft.graph.itemattachment/item"},
    )["item"]
    assert item["internetMessageId"] == original["internetMessageId"]
    assert item["subject"] == subject


def signed_in_as(host, sandbox, upn: str) -> str:
    """A service-account connection signed in (device code, admin CLI) as `upn`."""
    name = f"{upn.split('@')[0]}-{uuid.uuid4().hex[:6]}.contoso.test"
    add_service_account(host, name, account=upn)
    rc, out, err, _ = authenticate_with_device_code(host, sandbox, name, upn)
    assert rc == 0, out + err
    return name


def test_anna_sends_on_behalf_of_administratie_and_bram_without_the_grant_is_refused(
    host, boxes, sandbox
):
    anna = signed_in_as(host, sandbox, ANNA)
    subject = f"Namens administratie {uuid.uuid4().hex[:6]}"
    sent = ok(
        host.post(
            "/api/mail/send",
            json={"connection": anna, "from": ADMIN, "sender": ANNA, "to": [CARLA],
                  "subject": subject, "body": {"contentType": "text", "content": "Groet"}},
        )
    )  # fmt: skip
    got = arrived(boxes, sandbox, CARLA, subject)
    assert got["from"]["emailAddress"]["address"] == ADMIN
    assert got["sender"]["emailAddress"]["address"] == ANNA
    assert header(boxes, CARLA, got["id"], "Sender") == "Anna de Vries <anna@contoso.test>"
    page = sandbox.http.get(f"{sandbox.url}/ui/messages/{q(got['id'])}", timeout=30).text
    assert "on behalf of" in page
    # docs/permissions.md: sent through the delegate's own mailbox, so the copy is anna's;
    # administratie gets one only with MessageCopyForSendOnBehalfEnabled (off by default).
    copy = arrived(boxes, sandbox, ANNA, subject, "sentitems")
    assert copy["id"] == sent["messageId"]
    boxes.settle(ANNA)
    assert boxes.messages(ADMIN, "sentitems", subject) == []

    bram = signed_in_as(host, sandbox, BRAM)
    refused = host.post(
        "/api/mail/send",
        json={"connection": bram, "from": ADMIN, "sender": BRAM, "to": [CARLA],
              "subject": "zonder recht", "body": {"contentType": "text", "content": "x"}},
    )  # fmt: skip
    assert refused.status_code == 403, refused.text
    error = refused.json()["error"]
    assert error["code"] == "send_on_behalf_denied"
    grant = '-Identity administratie@contoso.test -GrantSendOnBehalfTo @{Add="bram@contoso.test"}'
    assert f"`Set-Mailbox {grant}`" in error["message"]
    assert error["graph"]["code"] == "ErrorSendAsDenied"
    # bram may not read administratie's mailbox: attaching a mail from it is refused too.
    original = filed_original(host, boxes, sandbox, f"Niet voor bram {uuid.uuid4().hex[:4]}")
    foreign = host.post(
        "/api/mail/send",
        json={"connection": bram, "from": BRAM, "to": [CARLA], "subject": "lek",
              "attachments": [{"message": {"mailbox": ADMIN, "messageId": original["id"]}}]},
    )  # fmt: skip
    assert foreign.status_code == 403, foreign.text
    assert foreign.json()["error"]["code"] == "access_denied"
    boxes.settle(BRAM)
    assert boxes.messages(CARLA, "inbox", "zonder recht") == []
    assert boxes.messages(CARLA, "inbox", "lek") == []
    assert boxes.messages(BRAM, "drafts") == []


def test_marks_and_receipt_requests_are_on_the_sent_message(host, boxes, sandbox):
    subject = f"Gemarkeerd {uuid.uuid4().hex[:6]}"
    flag = {
        "flagStatus": "flagged",
        "startDateTime": {"dateTime": "2026-03-09T09:00:00", "timeZone": "W. Europe Standard Time"},
        "dueDateTime": {"dateTime": "2026-03-13T17:00:00", "timeZone": "W. Europe Standard Time"},
    }
    ok(
        host.post(
            "/api/mail/send",
            json={
                "connection": "contoso.test",
                "from": ADMIN,
                "to": [ANNA],
                "subject": subject,
                "categories": ["Verwerkt", "Dossier 2026-042"],
                "flag": flag,
                "isReadReceiptRequested": True,
                "isDeliveryReceiptRequested": True,
            },
        )
    )
    copy = arrived(boxes, sandbox, ADMIN, subject, "sentitems")
    assert copy["categories"] == ["Verwerkt", "Dossier 2026-042"]
    assert copy["flag"]["flagStatus"] == "flagged"
    assert copy["flag"]["dueDateTime"]["dateTime"].startswith("2026-03-13T17:00:00")
    assert copy["flag"]["dueDateTime"]["timeZone"] == "W. Europe Standard Time"
    assert copy["isReadReceiptRequested"] is True and copy["isDeliveryReceiptRequested"] is True
    got = arrived(boxes, sandbox, ANNA, subject)
    assert header(boxes, ANNA, got["id"], "Disposition-Notification-To") == (
        "Administratie <administratie@contoso.test>"
    )
    page = sandbox.http.get(f"{sandbox.url}/ui/messages/{q(copy['id'])}", timeout=30).text
    assert "Verwerkt, Dossier 2026-042" in page and "flagged" in page


def test_a_draft_of_another_mailbox_is_not_found_and_stays_a_draft(host, boxes, sandbox):
    made = ok(
        host.post(
            "/api/mail/draft",
            json={"connection": "contoso.test", "from": ADMIN, "to": [ANNA], "subject": "c"},
        ),
        201,
    )
    for path, body in (
        ("/api/mail/send", {"from": BRAM, "draftId": made["messageId"]}),
        ("/api/mail/draft", {"from": BRAM, "draftId": made["messageId"], "subject": "x"}),
    ):
        resp = host.post(path, json={"connection": "contoso.test", **body})
        assert resp.status_code == 404, resp.text
        assert resp.json()["error"]["code"] == "message_not_found"
        assert resp.json()["error"]["details"][0]["field"] == "draftId"
    assert boxes.get(f"users/{ADMIN}/messages/{q(made['messageId'])}")["isDraft"] is True
    assert boxes.messages(ANNA, "inbox") == []


def reply_body(**fields) -> dict:
    return {"connection": "contoso.test", "mailbox": ADMIN, "messageId": "x", **fields}


def send_body(**fields) -> dict:
    return {"connection": "contoso.test", "from": ADMIN, "to": [ANNA], **fields}


CRLF = "a@contoso.test\r\nBcc: x@evil.test"


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("send", send_body(sender=CRLF), 400, "sender"),
        ("send", send_body(sender=42), 400, "sender"),
        ("send", send_body(sender="x@fabrikam.test"), 403, "sender"),
        ("send", send_body(categories="Verwerkt"), 400, "categories"),
        ("send", send_body(categories=["a\r\nb"]), 400, "categories[0]"),
        ("send", send_body(flag={"flagStatus": "flagged\r\n"}), 400, "flag.flagStatus"),
        ("send", send_body(flag=True), 400, "flag"),
        ("send", send_body(isReadReceiptRequested="yes"), 400, "isReadReceiptRequested"),
        ("send", send_body(isDeliveryReceiptRequested=[]), 400, "isDeliveryReceiptRequested"),
        ("send", send_body(draftId="a\r\nb"), 400, "draftId"),
        ("send", send_body(draftId=7), 400, "draftId"),
        ("send", send_body(draftInternetMessageId="<nobody@nowhere.test>"), 404,
         "draftInternetMessageId"),
        ("send", send_body(attachments=[{"message": {"mailbox": CRLF, "messageId": "x"}}]), 400,
         "attachments[0].message.mailbox"),
        ("send", send_body(attachments=[{"message": {"mailbox": ADMIN, "messageId": "x\ny"}}]),
         400, "attachments[0].message.messageId"),
        ("send", send_body(attachments=[{"message": {"mailbox": "x@fabrikam.test",
                                                     "messageId": "x"}}]),
         403, "attachments[0].message.mailbox"),
        ("draft", send_body(draftId="a", draftInternetMessageId="<b>"), 400, "draftId"),
        ("reply", reply_body(mailbox=CRLF), 400, "mailbox"),
        ("reply", reply_body(mailbox="x@fabrikam.test"), 403, "mailbox"),
        ("reply", reply_body(messageId=None, internetMessageId="<a>\r\nX: y"), 400,
         "internetMessageId"),
        ("reply", reply_body(replyAll="yes"), 400, "replyAll"),
        ("reply", reply_body(comment=5), 400, "comment"),
        ("reply", reply_body(comment="c", body={"content": "b"}), 400, "comment"),
        ("reply", reply_body(messageId=None, internetMessageId="<nobody@nowhere.test>"), 404,
         "internetMessageId"),
        ("reply", reply_body(messageId="not-a-graph-id"), 400, "messageId"),
        ("forward", reply_body(), 400, "to"),
        ("forward", reply_body(to=[CRLF]), 400, "to[0]"),
        ("forward", reply_body(to=[ANNA], sender="x@fabrikam.test"), 403, "sender"),
    ],
)  # fmt: skip
def test_bad_input_of_each_new_field_is_refused_with_its_field(host, path, body, status, field):
    resp = host.post(f"/api/mail/{path}", json={k: v for k, v in body.items() if v is not None})
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert "Traceback" not in resp.text
    if field is not None:
        assert field in [d["field"] for d in error.get("details", [])] or field in (
            error["details"][0]["message"] if error.get("details") else ""
        ), error


def test_a_message_in_another_mailbox_is_not_found_for_a_reply_or_an_attachment(
    host, boxes, sandbox
):
    original = filed_original(host, boxes, sandbox, f"Alleen administratie {uuid.uuid4().hex[:4]}")
    elsewhere = {"mailbox": BRAM, "messageId": original["id"]}
    answers = [
        host.post("/api/mail/reply", json=reply_body(**elsewhere)),
        host.post("/api/mail/send", json=send_body(attachments=[{"message": elsewhere}])),
    ]
    assert [a.status_code for a in answers] == [404, 404], [a.text for a in answers]
    assert {a.json()["error"]["code"] for a in answers} == {"message_not_found"}
    boxes.settle(ADMIN)
    assert boxes.messages(ADMIN, "drafts") == [] and boxes.messages(BRAM, "drafts") == []


def test_item_attachment_bytes_are_never_taken_as_base64(host, boxes, sandbox):
    """An attached mail with contentBytes too is refused, not partly used."""
    body = send_body(
        attachments=[
            {
                "message": {"mailbox": ADMIN, "messageId": "x"},
                "contentBytes": base64.b64encode(b"x").decode(),
            }
        ]
    )
    resp = host.post("/api/mail/send", json=body)
    assert resp.status_code == 400 and resp.json()["error"]["details"][0]["field"] == (
        "attachments[0]"
    )
