"""Filing and archiving through the devhost, Azurite and the sandbox: send-and-file, a marked
move and a copy, export as .eml (read back by two independent parsers), archiveUrl, and the
bad input that must be refused before anything is moved or sent."""

from __future__ import annotations

import base64
import email
import email.policy
import os
import uuid
from pathlib import Path

import fast_mail_parser
import pytest

from devhost.bootstrap import SANDBOX_CLIENT_SECRET, sandbox_connection
from tests.archive_server import ArchiveServer
from tests.conftest import q
from tests.e2e.background_support import (
    bg_fixture,  # noqa: F401 - provides the `bg` fixture to this module
    finished,
    wait_status,
)
from tests.functional.mailboxes import Mailboxes, until

ADMIN = "administratie@contoso.test"
ANNA = "anna@contoso.test"
BRAM = "bram@contoso.test"
CONNECTION = "contoso.test"
STRICT = "strict.contoso.test"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
CASE_FOLDER = "Inbox/Dossiers/2026-042"


@pytest.fixture(scope="module")
def boxes(sandbox) -> Mailboxes:
    return Mailboxes(sandbox.url, sandbox.ca)


@pytest.fixture(scope="module")
def strict(bg, sandbox) -> str:
    """A connection that may not reach private addresses, whose archive host is `localhost`."""
    from devhost.bootstrap import sandbox_secret_client
    from shared.identity.connections import save_connection

    doc = sandbox_connection(sandbox.url, STRICT)
    doc.update(archiveUrlHosts=["localhost"], allowPrivateAttachmentHosts=False)
    client = sandbox_secret_client(sandbox.url)
    try:
        save_connection(client, doc, SANDBOX_CLIENT_SECRET)
    finally:
        client.close()
    return STRICT


def folder_id(boxes: Mailboxes, mailbox: str, path: str) -> str | None:
    """The id of `Inbox/a/b` in `mailbox`, or None when a segment is missing."""
    parent = "inbox"
    for name in path.split("/")[1:]:
        children = boxes.get(f"users/{mailbox}/mailFolders/{q(parent)}/childFolders")["value"]
        match = [c for c in children if c["displayName"] == name]
        if not match:
            return None
        parent = match[0]["id"]
    return parent


def with_subject(boxes: Mailboxes, mailbox: str, folder: str, subject: str) -> list[dict]:
    return boxes.messages(mailbox, folder, subject)


def test_a_sync_send_with_file_to_leaves_one_categorized_copy_in_the_case_folder(bg, boxes):
    subject = f"file-sync {uuid.uuid4()}"
    resp = bg.post(
        "/api/mail/send",
        json={
            "connection": CONNECTION,
            "from": ADMIN,
            "to": [ANNA],
            "subject": subject,
            "fileTo": {
                "destination": CASE_FOLDER,
                "createMissingFolders": True,
                "categories": ["Verwerkt"],
            },
        },
    )
    # 200 when Exchange filed the copy at once; else 202 while the filing goes on by itself.
    assert resp.status_code in (200, 202), resp.text
    if resp.status_code == 202:
        assert resp.json()["error"]["code"] == "pending"
        status = wait_status(bg, resp.json()["operationId"], finished, timeout=60)
        assert status["status"] == "succeeded", status
        result = status["result"]
    else:
        result = resp.json()
    boxes.settle(ADMIN)
    case = folder_id(boxes, ADMIN, CASE_FOLDER)
    assert case and result["filed"]["destinationFolderId"] == case
    filed = with_subject(boxes, ADMIN, case, subject)
    assert [m["id"] for m in filed] == [result["messageId"]]
    assert filed[0]["categories"] == ["Verwerkt"]
    assert with_subject(boxes, ADMIN, "sentitems", subject) == []
    assert len(until(lambda: with_subject(boxes, ANNA, "inbox", subject))) == 1


def test_a_move_marks_the_message_and_a_copy_leaves_the_original(bg, boxes):
    subject = f"mark {uuid.uuid4()}"
    sent = bg.post(
        "/api/mail/send",
        json={"connection": CONNECTION, "from": ADMIN, "to": [ANNA], "subject": subject},
    )
    assert sent.status_code == 200, sent.text
    received = until(lambda: with_subject(boxes, ANNA, "inbox", subject), 30)[0]
    assert received["isRead"] is False and received["categories"] == []
    resp = bg.post(
        "/api/mail/move",
        json={
            "connection": CONNECTION,
            "mailbox": ANNA,
            "messageId": received["id"],
            "destination": "Inbox/Verwerkt",
            "createMissingFolders": True,
            "markAsRead": True,
            "categories": ["Verwerkt"],
            "flag": "flagged",
        },
    )
    assert resp.status_code == 200, resp.text
    moved = resp.json()
    assert moved["status"] == "moved"
    message = boxes.get(f"users/{ANNA}/messages/{q(moved['messageId'])}")
    assert message["parentFolderId"] == moved["destinationFolderId"]
    assert message["isRead"] is True
    assert message["categories"] == ["Verwerkt"]
    assert message["flag"]["flagStatus"] == "flagged"
    assert with_subject(boxes, ANNA, "inbox", subject) == []

    resp = bg.post(
        "/api/mail/move",
        json={
            "connection": CONNECTION,
            "mailbox": ANNA,
            "messageId": moved["messageId"],
            "destination": "archive",
            "copy": True,
        },
    )
    assert resp.status_code == 200, resp.text
    copied = resp.json()
    assert copied["status"] == "copied" and copied["messageId"] != moved["messageId"]
    assert [m["id"] for m in with_subject(boxes, ANNA, moved["destinationFolderId"], subject)] == [
        moved["messageId"]
    ]
    assert [m["id"] for m in with_subject(boxes, ANNA, "archive", subject)] == [copied["messageId"]]


def test_export_of_a_sent_mail_reads_back_in_two_parsers_and_archives_the_same_bytes(
    bg, boxes, sandbox
):
    subject = f"Export é {uuid.uuid4()}"
    document = os.urandom(10 * 1024 * 1024)
    html = '<p>Zie het logo <img src="cid:logo@docuflow"> en de bijlage.</p>'
    resp = bg.post(
        "/api/mail/send",
        json={
            "connection": CONNECTION,
            "from": ADMIN,
            "to": [{"address": ANNA, "name": "Anna de Vries"}],
            "cc": [BRAM],
            "subject": subject,
            "body": {"contentType": "html", "content": html},
            "headers": {"x-docuflow-case": "2026-042"},
            "attachments": [
                {
                    "name": "logo.png",
                    "contentType": "image/png",
                    "contentBytes": base64.b64encode(PNG).decode(),
                    "isInline": True,
                    "contentId": "logo@docuflow",
                },
                {
                    "name": "dossier.bin",
                    "contentType": "application/octet-stream",
                    "contentBytes": base64.b64encode(document).decode(),
                },
            ],
        },
        timeout=300,
    )
    assert resp.status_code == 200, resp.text
    sent = resp.json()
    boxes.settle(ADMIN)
    export = bg.post(
        "/api/mail/export",
        json={"connection": CONNECTION, "mailbox": ADMIN, "messageId": sent["messageId"]},
        timeout=300,
    )
    assert export.status_code == 200, export.text[:500]
    assert export.headers["Content-Type"].startswith("message/rfc822")
    assert "filename*=UTF-8''Export%20%C3%A9%20" in export.headers["Content-Disposition"]
    eml = export.content

    parsed = email.message_from_bytes(eml, policy=email.policy.default)
    assert parsed["Subject"] == subject
    assert parsed["Message-ID"] == sent["internetMessageId"]
    assert parsed["From"].addresses[0].addr_spec == ADMIN
    assert [(a.display_name, a.addr_spec) for a in parsed["To"].addresses] == [
        ("Anna de Vries", ANNA)
    ]
    assert parsed["Cc"].addresses[0].addr_spec == BRAM
    assert "cid:logo@docuflow" in parsed.get_body(preferencelist=("html",)).get_content()
    files = {p.get_filename(): p.get_content() for p in parsed.walk() if p.get_filename()}
    assert files == {"logo.png": PNG, "dossier.bin": document}

    other = fast_mail_parser.parse_email(eml)
    assert other.subject == subject
    assert other.headers["Message-ID"] == [sent["internetMessageId"]]
    assert ADMIN in other.headers["From"][0] and ANNA in other.headers["To"][0]
    assert BRAM in other.headers["Cc"][0]
    assert any("cid:logo@docuflow" in part for part in other.text_html)
    assert {a.filename: a.content for a in other.attachments} == files

    with ArchiveServer(Path(sandbox.ca).parent) as archive:
        url = archive.url("/cases/2026-042/sent.eml")
        resp = bg.post(
            "/api/mail/export",
            json={
                "connection": CONNECTION,
                "mailbox": ADMIN,
                "internetMessageId": sent["internetMessageId"],
                "archiveUrl": url,
            },
            timeout=300,
        )
        assert resp.status_code == 200, resp.text
        assert [u.read() == eml for u in archive.uploads] == [True]
        upload = archive.uploads[0]
    stored = resp.json()["archive"]
    assert stored == {
        "url": url.split("?")[0],
        "size": len(eml),
        "sha256": upload.sha256,
        "status": 201,
    }
    assert "secret-signature" not in resp.text


def test_send_move_and_export_refuse_bad_input_before_anything_is_moved_or_sent(
    bg, boxes, sandbox, strict
):
    subject = f"refused {uuid.uuid4()}"
    send = {"connection": CONNECTION, "from": ADMIN, "to": [ANNA], "subject": subject}
    refusals = [
        ({**send, "fileTo": {"destination": "Inbox/../Sent Items"}}, 400, "fileTo.destination"),
        ({**send, "archive": {"url": "https://files.example.com/x.eml"}}, 400, "archive.url"),
        (
            {**send, "connection": strict, "archive": {"url": "https://localhost/x.eml"}},
            400,
            "archive.url",
        ),
        ({**send, "fileTo": {"destination": "Inbox/Bestaat-niet-" + subject[-8:]}}, 404, None),
    ]
    for body, status, field in refusals:
        resp = bg.post("/api/mail/send", json=body)
        assert resp.status_code == status, (body, resp.text)
        if field:
            assert resp.json()["error"]["details"][0]["field"] == field, resp.text
    assert "loopback" in bg.post("/api/mail/send", json=refusals[2][0]).text

    # A mail to move: none of the refused requests may move it.
    sent = bg.post("/api/mail/send", json=send)
    assert sent.status_code == 200, sent.text
    received = until(lambda: with_subject(boxes, ANNA, "inbox", subject), 30)[0]
    move = {"connection": CONNECTION, "mailbox": ANNA, "messageId": received["id"]}
    with ArchiveServer(Path(sandbox.ca).parent) as redirecting:
        redirecting.redirect_to = "https://127.0.0.1:9/elsewhere.eml"
        for body, status, code in [
            ({**move, "destination": "Inbox/../.."}, 400, "validation_failed"),
            ({**move, "destination": "archive", "messageId": received["id"][:-8] + "AAAAAAA="},
             404, "message_not_found"),
            ({**move, "destination": "archive",
              "archive": {"url": "https://files.example.com/x.eml"}}, 400, "validation_failed"),
            ({**move, "connection": strict, "destination": "archive",
              "archive": {"url": "https://localhost/x.eml"}}, 400, "validation_failed"),
            ({**move, "destination": "archive",
              "archive": {"url": redirecting.url("/x.eml")}}, 400, "validation_failed"),
        ]:  # fmt: skip
            resp = bg.post("/api/mail/move", json=body)
            assert resp.status_code == status, (body, resp.text)
            assert resp.json()["error"]["code"] == code
        assert redirecting.uploads == []
    export = {"connection": CONNECTION, "mailbox": ANNA}
    for body, status in [
        ({**export, "messageId": received["id"][:-8] + "AAAAAAA="}, 404),
        ({**export, "internetMessageId": "<nobody@nowhere.test>"}, 404),
        ({**export, "messageId": received["id"], "archiveUrl": "https://files.example.com/x"}, 400),
        ({**export, "messageId": received["id"], "mode": "async"}, 400),
    ]:
        resp = bg.post("/api/mail/export", json=body)
        assert resp.status_code == status, (body, resp.text)

    assert [m["id"] for m in with_subject(boxes, ANNA, "inbox", subject)] == [received["id"]]
    assert with_subject(boxes, ANNA, "archive", subject) == []
    boxes.settle(ADMIN)
    assert len(with_subject(boxes, ADMIN, "sentitems", subject)) == 1  # only the plain send
