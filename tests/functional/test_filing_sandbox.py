"""Move with marks, copy, send-and-file, export and archive, called directly against the sandbox
(no devhost): the steps, their resumption and the URL checks, with real Graph semantics."""

from __future__ import annotations

import email
import email.policy
import json
import uuid
from pathlib import Path

import msgspec
import pytest

from shared.api.validation import decode
from shared.downloads import Download
from shared.errors import Pending, Throttled, ValidationFailed
from shared.models import ExportRequest, MoveRequest, ReplyRequest, SendRequest
from shared.operations import direct as operations
from shared.operations.context import Progress
from tests.archive_server import ArchiveServer
from tests.conftest import q
from tests.functional.conftest import CONNECTION, Ops, until

ADMIN = "administratie@contoso.test"
ANNA = "anna@contoso.test"


def request(kind, **fields):
    return decode(kind, json.dumps({"connection": CONNECTION, **fields}).encode())


def sent_mail(ops: Ops, subject: str) -> dict:
    """Send as ADMIN to ANNA and return ANNA's Inbox copy (once delivered)."""
    operations.send(
        request(SendRequest, **{"from": ADMIN, "to": [ANNA], "subject": subject}), ops.context()
    )
    found = until(
        lambda: [m for m in ops.folder_messages(ANNA, "inbox") if m["subject"] == subject],
        ops.sandbox.transit_seconds() + 5,
    )
    assert found
    return found[0]


def test_a_marked_move_shows_read_categories_and_flag_and_a_copy_keeps_the_original(ops: Ops):
    mail = sent_mail(ops, f"mark {uuid.uuid4()}")
    assert mail["isRead"] is False
    moved = operations.move(
        request(
            MoveRequest,
            mailbox=ANNA,
            messageId=mail["id"],
            destination="Inbox/Verwerkt",
            createMissingFolders=True,
            markAsRead=True,
            categories=["Verwerkt", "DocuFlow"],
            flag="complete",
        ),
        ops.context(),
    )
    after = ops.graph_get(f"users/{ANNA}/messages/{q(moved.message_id)}")
    assert after["parentFolderId"] == moved.destination_folder_id
    assert after["isRead"] is True
    assert after["categories"] == ["Verwerkt", "DocuFlow"]
    assert after["flag"]["flagStatus"] == "complete"

    # Added, not replaced (case-insensitively merged); then a copy leaves the original in place.
    copied = operations.move(
        request(
            MoveRequest,
            mailbox=ANNA,
            messageId=moved.message_id,
            destination="archive",
            copy=True,
            categories=["verwerkt", "Archief"],
        ),
        ops.context(),
    )
    assert copied.status == "copied" and copied.message_id != moved.message_id
    original = ops.graph_get(f"users/{ANNA}/messages/{q(moved.message_id)}")
    assert original["parentFolderId"] == moved.destination_folder_id
    assert original["categories"] == ["Verwerkt", "DocuFlow"]
    copy = ops.graph_get(f"users/{ANNA}/messages/{q(copied.message_id)}")
    assert copy["categories"] == ["Verwerkt", "DocuFlow", "Archief"]
    assert copy["internetMessageId"] == original["internetMessageId"]


def test_a_resumed_copy_finds_the_copy_an_earlier_attempt_made(ops: Ops):
    mail = sent_mail(ops, f"copy {uuid.uuid4()}")
    body = {"mailbox": ANNA, "messageId": mail["id"], "destination": "archive", "copy": True}
    progress = Progress()
    first = operations.move(request(MoveRequest, **body), ops.context("op-1", progress=progress))
    # The answer was "lost": the next attempt resumes with what the first one recorded.
    again = Progress(progress.steps, resume=True)
    second = operations.move(request(MoveRequest, **body), ops.context("op-1", progress=again))
    assert second.message_id == first.message_id
    copies = [m for m in ops.folder_messages(ANNA, "archive") if m["subject"] == mail["subject"]]
    assert len(copies) == 1


def test_send_and_file_waits_for_the_sent_copy_without_sending_twice(ops: Ops):
    # Exchange takes 3 s to file the copy: the first attempt ends Pending (re-scheduled).
    ops.sandbox.control("PATCH", "limits", json={"sentCopyDelayMs": 3000})
    subject = f"file {uuid.uuid4()}"
    send = request(
        SendRequest,
        **{
            "from": ADMIN,
            "to": [ANNA],
            "subject": subject,
            "fileTo": {
                "destination": "Inbox/Dossiers/2026-042",
                "createMissingFolders": True,
                "categories": ["Verwerkt"],
                "markAsRead": True,
            },
        },
    )
    progress = Progress()
    with pytest.raises(Pending) as first:
        operations.send(send, ops.context("op-2", progress=progress))
    assert 2 <= (first.value.retry_after or 0) <= 30
    assert "sent" in progress.steps and "filed" not in progress.steps
    result = until(lambda: _attempt(ops, send, progress), 10.0)
    assert result and result.filed is not None
    ops.settle(ADMIN)
    filed = [
        m
        for m in ops.graph_get(
            f"users/{ADMIN}/mailFolders/{q(result.filed.destination_folder_id)}/messages"
        )["value"]
        if m["subject"] == subject
    ]
    assert len(filed) == 1 and filed[0]["categories"] == ["Verwerkt"] and filed[0]["isRead"]
    assert not [m for m in ops.folder_messages(ADMIN, "sentitems") if m["subject"] == subject]
    delivered = [m for m in ops.folder_messages(ANNA, "inbox") if m["subject"] == subject]
    assert len(delivered) == 1


def _attempt(ops: Ops, send: SendRequest, progress: Progress):
    try:
        return operations.send(
            send, ops.context("op-2", progress=Progress(progress.steps, resume=True))
        )
    except Pending:
        return None


def test_export_streams_the_eml_and_archives_exactly_those_bytes(ops: Ops):
    mail = sent_mail(ops, f"export {uuid.uuid4()}")
    download = operations.export(
        request(ExportRequest, mailbox=ANNA, messageId=mail["id"]), ops.context()
    )
    assert isinstance(download, Download)
    eml = b"".join(download.chunks)
    assert download.length == len(eml)
    assert download.filename == f"{mail['subject']}.eml"
    parsed = email.message_from_bytes(eml, policy=email.policy.default)
    assert parsed["Message-ID"] == mail["internetMessageId"]

    with ArchiveServer(Path(ops.sandbox.ca).parent) as archive:
        url = archive.url("/cases/2026-042/mail.eml")
        done = operations.export(
            request(
                ExportRequest,
                mailbox=ANNA,
                internetMessageId=mail["internetMessageId"],
                archiveUrl=url,
            ),
            ops.context(),
        )
        assert [u.read() for u in archive.uploads] == [eml]
        upload = archive.uploads[0]
    assert done.archive.size == len(eml) and done.archive.sha256 == upload.sha256
    assert done.archive.url == url.split("?")[0]  # the SAS query is never echoed
    assert upload.headers["Content-Type"] == "message/rfc822"
    assert upload.headers["x-ms-blob-type"] == "BlockBlob"


def test_archive_urls_off_the_allowlist_internal_or_redirecting_are_refused(ops: Ops):
    mail = sent_mail(ops, f"refuse {uuid.uuid4()}")
    base = {"mailbox": ANNA, "messageId": mail["id"]}

    def refused(ctx, url: str) -> str:
        with pytest.raises(ValidationFailed) as err:
            operations.export(request(ExportRequest, **base, archiveUrl=url), ctx)
        return err.value.details[0].message

    assert "archiveUrlHosts" in refused(ops.context(), "https://files.example.com/a.eml")
    strict = ops.context()
    strict.connection = msgspec.structs.replace(
        strict.connection,
        archive_url_hosts=["archive.contoso.test"],
        allow_private_attachment_hosts=False,
    )
    strict.resolve = lambda host, port: ["10.1.2.3"]
    assert "private address" in refused(strict, "https://archive.contoso.test/a.eml")
    with ArchiveServer(Path(ops.sandbox.ca).parent) as archive:
        archive.redirect_to = "https://127.0.0.1:1/elsewhere"
        assert "redirect" in refused(ops.context(), archive.url("/a.eml"))
        assert archive.uploads == []


def test_a_reply_with_file_to_ends_as_one_categorized_copy_in_the_case_folder(ops: Ops):
    from shared.operations.reply import reply

    mail = sent_mail(ops, f"question {uuid.uuid4()}")
    answer = request(
        ReplyRequest,
        mailbox=ANNA,
        messageId=mail["id"],
        comment="Dank u, verwerkt.",
        fileTo={"destination": "Inbox/Beantwoord", "createMissingFolders": True,
                "categories": ["Verwerkt"]},
    )  # fmt: skip
    progress = Progress()

    def attempt():
        try:
            ctx = ops.context("op-reply", progress=Progress(progress.steps, resume=True))
            return reply(answer, ctx)
        except Pending:
            return None

    try:
        result = reply(answer, ops.context("op-reply", progress=progress))
    except Pending:
        result = until(attempt, ops.sandbox.transit_seconds() + 10)
    assert result and result.filed is not None
    assert result.conversation_id == mail["conversationId"]
    ops.settle(ANNA)
    folder = f"users/{ANNA}/mailFolders/{q(result.filed.destination_folder_id)}/messages"
    filed = [m for m in ops.graph_get(folder)["value"] if m["subject"] == f"RE: {mail['subject']}"]
    assert [m["id"] for m in filed] == [result.message_id]
    assert filed[0]["categories"] == ["Verwerkt"]
    sent_items = ops.folder_messages(ANNA, "sentitems")
    assert not [m for m in sent_items if m["subject"] == f"RE: {mail['subject']}"]


def test_send_and_file_sends_once_when_exchange_refuses_over_the_sending_rate(ops: Ops):
    # sendRateMode reject: over the rate Graph answers 429 to /send (the other behaviour,
    # `hold`, is the fault campaign's); nothing is sent or filed until a later attempt.
    ops.sandbox.control(
        "PATCH",
        "limits",
        json={"sendRatePerMinute": 1, "sendRateMode": "reject", "sentCopyDelayMs": 0},
    )
    run = uuid.uuid4().hex[:8]

    def body(n: int) -> SendRequest:
        return request(
            SendRequest,
            **{
                "from": ADMIN,
                "to": [ANNA],
                "subject": f"rate {n} {run}",
                "fileTo": {"destination": f"Inbox/Rate-{run}", "createMissingFolders": True,
                           "categories": ["Verwerkt"]},
            },
        )  # fmt: skip

    first = operations.send(body(1), ops.context())
    assert first.filed is not None
    progress = Progress()
    with pytest.raises(Throttled):
        operations.send(body(2), ops.context("op-rate", progress=progress))
    assert "sent" not in progress.steps
    ops.sandbox.control("PATCH", "limits", json={"sendRatePerMinute": None})
    ops.limits_time.shift += 120  # past the pause the 429's Retry-After asked for
    again = Progress(progress.steps, resume=True)
    second = operations.send(body(2), ops.context("op-rate", progress=again))
    assert second.filed is not None and second.filed.destination_folder_id == (
        first.filed.destination_folder_id
    )
    ops.settle(ADMIN)
    folder = f"users/{ADMIN}/mailFolders/{q(first.filed.destination_folder_id)}/messages"
    filed = sorted(m["subject"] for m in ops.graph_get(folder)["value"])
    assert filed == [f"rate 1 {run}", f"rate 2 {run}"]
    everywhere = ops.graph_get(f"users/{ADMIN}/messages", **{"$top": "200"})["value"]
    assert sorted(m["subject"] for m in everywhere if run in m["subject"]) == filed
    delivered = [m["subject"] for m in ops.folder_messages(ANNA, "inbox") if run in m["subject"]]
    assert sorted(delivered) == filed
