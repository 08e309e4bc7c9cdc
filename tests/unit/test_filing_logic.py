"""Pure logic of filing and archiving: validation of the new fields, the mode a send-and-file
runs in, the wait between looks for the Sent Items copy, how marks merge, file names, how the
lifecycle treats the new errors, and the sandbox's MIME length arithmetic."""

from __future__ import annotations

import base64
import json

import pytest

from sandbox.graph.mime import _base64_lines, _encoded_length
from shared.api.modes import effective_mode
from shared.api.validation import decode
from shared.downloads import content_disposition, safe_filename
from shared.errors import Pending, SentCopyMissing, ValidationFailed
from shared.graph.folders import parse_destination
from shared.models import ExportRequest, MoveRequest, SendRequest
from shared.operations.filing import wait_seconds
from shared.operations.marks import merged_categories
from shared.work.states import Action, classify

SEND = {"connection": "c", "from": "a@contoso.test", "to": ["b@contoso.test"]}
MOVE = {"connection": "c", "mailbox": "a@contoso.test", "messageId": "x", "destination": "archive"}


def problems(kind, body: dict) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as err:
        decode(kind, json.dumps(body).encode())
    return {d.field or "": d.message for d in err.value.details}


@pytest.mark.parametrize("path", ["..", "Inbox/..", "Inbox/../Sent Items", "./Inbox", "a/./b"])
def test_a_folder_path_cannot_go_up(path):
    with pytest.raises(ValueError, match="cannot go up"):
        parse_destination(path)
    assert "destination" in problems(MoveRequest, {**MOVE, "destination": path})
    found = problems(SendRequest, {**SEND, "fileTo": {"destination": path}})
    assert "fileTo.destination" in found


def test_marks_file_to_and_archive_are_validated_field_by_field():
    found = problems(
        MoveRequest,
        {**MOVE, "categories": ["ok", "a,b", "bad\nname", "  "], "flag": "maybe",
         "archive": {"url": "http://archive.contoso.test/x.eml"}},
    )  # fmt: skip
    assert set(found) == {"categories[1]", "categories[2]", "categories[3]", "flag", "archive.url"}
    found = problems(
        SendRequest,
        {**SEND, "saveToSentItems": False, "fileTo": {"destination": "Inbox/Zaken"}},
    )
    assert "saveToSentItems" in found["fileTo"]
    assert "categories" in str(problems(MoveRequest, {**MOVE, "categories": ["x"] * 26}))


def test_a_queued_export_must_name_an_archive_url():
    body = {"connection": "c", "mailbox": "a@contoso.test", "messageId": "x"}
    assert "archiveUrl" in problems(ExportRequest, {**body, "mode": "async"})
    assert "messageId" in problems(ExportRequest, {**body, "internetMessageId": "<i@d>"})
    assert "archiveUrl" in problems(ExportRequest, {**body, "archiveUrl": "https://u:p@h/x"})
    ok = decode(ExportRequest, json.dumps({**body, "archiveUrl": "https://h/x"}).encode())
    assert ok.archive_url == "https://h/x"


def test_a_sync_send_that_files_or_archives_runs_as_auto():
    def mode(kind, body):
        return effective_mode(decode(kind, json.dumps(body).encode()))

    assert mode(SendRequest, {**SEND, "fileTo": {"destination": "Inbox/Zaken"}}) == "auto"
    assert mode(SendRequest, {**SEND, "archive": {"url": "https://h/x.eml"}}) == "auto"
    assert mode(SendRequest, SEND) == "sync"
    assert mode(SendRequest, {**SEND, "mode": "async", "fileTo": {"destination": "x"}}) == "async"
    # A move waits for nothing: its archive step runs inline.
    assert mode(MoveRequest, {**MOVE, "archive": {"url": "https://h/x.eml"}}) == "sync"


def test_the_wait_for_the_sent_copy_grows_with_the_time_waited_within_bounds():
    assert wait_seconds(0) == 2.0
    assert wait_seconds(10) == 5.0
    assert wait_seconds(3600) == 30.0


def test_added_categories_merge_case_insensitively_in_order():
    assert merged_categories(["Verwerkt", "B"], ["verwerkt", "C", "c"]) == ["Verwerkt", "B", "C"]
    assert merged_categories([], ["A", "a"]) == ["A"]


def test_waiting_is_rescheduled_and_a_copy_that_never_came_is_final():
    pending = classify(Pending("not yet", retry_after=7.0), attempts=3)
    assert pending.action is Action.RESCHEDULE and pending.delay == 7.0
    assert classify(SentCopyMissing("gone"), attempts=3).action is Action.FAIL


def test_file_names_come_from_the_subject_safely():
    assert safe_filename('Factuur "2026/042": ok?', ".eml") == "Factuur 2026 042 ok.eml"
    assert safe_filename("\r\n..", ".eml") == "message.eml"
    assert safe_filename("x" * 300, ".eml") == "x" * 120 + ".eml"
    header = content_disposition("Offerte é.eml")
    assert header == "attachment; filename=\"Offerte ?.eml\"; filename*=UTF-8''Offerte%20%C3%A9.eml"


@pytest.mark.parametrize("size", [0, 1, 56, 57, 58, 171, 233_472, 233_473, 700_001])
def test_the_sandbox_knows_the_base64_length_before_streaming_it(size):
    data = bytes(range(256)) * (size // 256 + 1)
    data = data[:size]
    encoded = b"".join(_base64_lines(iter([data[i : i + 65_536] for i in range(0, size, 65_536)])))
    assert len(encoded) == _encoded_length(size)
    assert base64.b64decode(encoded.replace(b"\r\n", b"")) == data
    assert all(len(line) <= 76 for line in encoded.split(b"\r\n"))
