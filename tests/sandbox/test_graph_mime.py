"""`GET …/messages/{id}/$value`: the message as RFC 5322 MIME that a standard parser reads back.

outlook-get-mime-message.md: append `$value` to get a message "in MIME format"; Graph answers
it as `text/plain`. Headers from the item (From, Sender, To, Cc, Subject, Date, Message-ID, x-
headers), both bodies, inline images with their Content-ID and file attachments, byte for byte.
"""

from __future__ import annotations

import base64
import email
import email.policy
import os

import pytest

from tests.conftest import q
from tests.sandbox.graph_client import (
    ADMIN,
    ANNA,
    Graph,
    app_token,
    draft,
    eventually,
    rcpt,
    sent_items,
)

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture
def g(fresh_sandbox) -> Graph:
    return Graph(fresh_sandbox.url, fresh_sandbox.ca, app_token(fresh_sandbox.url))


def mime_of(g: Graph, mailbox: str, message_id: str) -> email.message.EmailMessage:
    resp = g.get(f"users/{mailbox}/messages/{q(message_id)}/$value")
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert int(resp.headers["Content-Length"]) == len(resp.content)
    assert b"\r\n\r\n" in resp.content and b"\n" not in resp.content.replace(b"\r\n", b"")
    return email.message_from_bytes(resp.content, policy=email.policy.default)


def test_a_sent_mail_reads_back_with_its_headers_bodies_and_attachments(g, fresh_sandbox):
    pdf = os.urandom(300_000)
    msg = draft(
        g,
        subject="Factuur 2026-042 — ‘geïndexeerd’",
        body={"contentType": "html", "content": '<p>Zie <img src="cid:logo@docuflow">.</p>'},
        toRecipients=[{"emailAddress": {"address": ANNA, "name": "Anna de Vries"}}],
        ccRecipients=[rcpt("klant@example.com")],
        internetMessageHeaders=[{"name": "x-docuflow-case", "value": "2026-042"}],
        attachments=[
            {
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": "logo.png",
                "contentType": "image/png",
                "contentBytes": base64.b64encode(PNG).decode(),
                "isInline": True,
                "contentId": "logo@docuflow",
            },
            {
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": "factuur ë.pdf",
                "contentType": "application/pdf",
                "contentBytes": base64.b64encode(pdf).decode(),
            },
        ],
    )
    g.ok("POST", f"users/{ADMIN}/messages/{q(msg['id'])}/send", 202)
    sent = eventually(lambda: sent_items(g, ADMIN), fresh_sandbox.transit_seconds() + 5)
    assert sent
    parsed = mime_of(g, ADMIN, sent[0]["id"])

    assert parsed["Subject"] == "Factuur 2026-042 — ‘geïndexeerd’"
    assert parsed["Message-ID"] == sent[0]["internetMessageId"]
    assert parsed["To"].addresses[0].addr_spec == ANNA
    assert parsed["To"].addresses[0].display_name == "Anna de Vries"
    assert parsed["Cc"].addresses[0].addr_spec == "klant@example.com"
    assert parsed["From"].addresses[0].addr_spec == ADMIN
    assert parsed["Date"].datetime is not None
    assert parsed["x-docuflow-case"] == "2026-042"
    assert parsed.get_content_type() == "multipart/mixed"
    html = parsed.get_body(preferencelist=("html",))
    assert html is not None and "cid:logo@docuflow" in html.get_content()
    assert "Zie" in parsed.get_body(preferencelist=("plain",)).get_content()
    related = [p for p in parsed.walk() if p.get_content_type() == "multipart/related"]
    assert related, "the inline image makes the HTML part multipart/related"
    image = next(p for p in parsed.walk() if p.get_content_type() == "image/png")
    assert image["Content-ID"] == "<logo@docuflow>"
    assert image.get_content() == PNG
    files = {p.get_filename(): p.get_content() for p in parsed.iter_attachments()}
    assert files["factuur ë.pdf"] == pdf

    # The recipient's copy carries the transport's trace and the sender's x- header.
    inbox = eventually(lambda: g.ok("GET", f"users/{ANNA}/mailFolders/inbox/messages")["value"], 5)
    received = mime_of(g, ANNA, inbox[0]["id"])
    assert received["Received"] and received["Message-ID"] == parsed["Message-ID"]
    assert received["x-docuflow-case"] == "2026-042"
    assert received["Bcc"] is None


def test_a_text_draft_is_one_text_part_and_an_unknown_id_is_404(g):
    msg = draft(g, body={"contentType": "text", "content": "Regel 1\nRegel 2 é"}, subject="")
    parsed = mime_of(g, ADMIN, msg["id"])
    assert parsed.get_content_type() == "text/plain"
    assert parsed.get_content().replace("\r\n", "\n") == "Regel 1\nRegel 2 é\n"
    resp = g.get(f"users/{ADMIN}/messages/{q(msg['id'][:-4] + 'AAAA')}/$value")
    assert resp.status_code in (400, 404)
