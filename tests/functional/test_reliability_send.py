"""Exactly-once at the send operation and the Graph client, against the sandbox's faults and
its Outbox window (sentCopyDelayMs): lost answers, gateway errors, definite failures."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from shared.api.validation import decode
from shared.errors import (
    GraphOutcomeUnknown,
    GraphUnavailable,
    Throttled,
    ValidationFailed,
)
from shared.models import SendRequest
from shared.operations import direct as operations
from shared.operations.context import Progress
from shared.operations.exactly_once import SEND_ISSUED
from tests.functional.conftest import CONNECTION, Ops, until

pytestmark = pytest.mark.timeout(90)

ADMIN = "administratie@contoso.test"
ANNA = "anna@contoso.test"
SEND_STEP = r"/messages/[^/]+/send$"


def send_request(subject: str, **fields) -> SendRequest:
    body = {"connection": CONNECTION, "from": ADMIN, "to": [ANNA], "subject": subject}
    body.update(fields)
    return decode(SendRequest, json.dumps(body).encode())


def count(ops: Ops, mailbox: str, folder: str, subject: str) -> int:
    """Copies of `subject` in a folder; in any but the Outbox once administratie's mail has
    left its Outbox (then the count is final)."""
    if folder != "outbox":
        ops.settle(ADMIN)
    return sum(1 for m in ops.folder_messages(mailbox, folder) if m.get("subject") == subject)


def recorded(saved: list[str | None]) -> Progress:
    """What the lifecycle gives a queued attempt: progress persisted on every record (here:
    appended to `saved`, the stored `sendIssuedAt` after each record)."""
    return Progress(persist=lambda steps: saved.append(steps.get(SEND_ISSUED)))


# --- B2: the Graph client and gateway errors ------------------------------------------------


def test_a_504_on_a_post_is_outcome_unknown_and_not_repeated(ops: Ops):
    ctx = ops.context()
    ops.sandbox.add_fault(method="POST", path=r"/sendMail$", action="status", status=504, times=1)
    message = {"message": {"subject": "gw", "toRecipients": [{"emailAddress": {"address": ANNA}}]}}
    # The sandbox logs a request when it ends, with the time it began: one that an earlier test
    # on this sandbox left running can end (and be logged) after the reset. Only those that
    # began from here on can be this call's attempts.
    called_at = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    with pytest.raises(GraphOutcomeUnknown):
        ctx.graph.post(f"users/{ADMIN}/sendMail", json=message)
    log = ops.sandbox.requests_log()
    posts = [r for r in log if r.get("path", "").endswith("/sendMail") and r["time"] >= called_at]
    # One attempt: a second could have sent the mail twice.
    assert len(posts) == 1, f"since {called_at}: {json.dumps(log, indent=1)}"


def test_a_503_without_retry_after_on_a_post_is_outcome_unknown(ops: Ops):
    ctx = ops.context()
    ops.sandbox.add_fault(method="POST", path=r"/messages$", action="status", status=503, times=1)
    with pytest.raises(GraphOutcomeUnknown):
        ctx.graph.post(f"users/{ADMIN}/messages", json={"subject": "x"})


def test_a_503_with_retry_after_on_a_post_is_retried(ops: Ops):
    ctx = ops.context()
    ops.sandbox.add_fault(
        method="POST", path=r"/messages$", action="status", status=503, retryAfter=1, times=1
    )
    created = ctx.graph.post(f"users/{ADMIN}/messages", json={"subject": "retried"})
    assert created["id"] and count(ops, ADMIN, "drafts", "retried") == 1


def test_gets_keep_retrying_gateway_errors(ops: Ops):
    ctx = ops.context()
    ops.sandbox.add_fault(method="GET", path=r"/mailFolders/inbox$", action="status", status=504,
                          times=1)  # fmt: skip
    assert ctx.graph.get(f"users/{ADMIN}/mailFolders/inbox")["id"]


# --- B1: the Outbox window --------------------------------------------------------------------


def test_a_lost_send_answer_while_the_mail_is_in_the_outbox_is_outcome_unknown(ops: Ops):
    ops.sandbox.control("PATCH", "limits", json={"sentCopyDelayMs": 1500})
    ops.sandbox.add_fault(method="POST", path=SEND_STEP, action="accept_then_drop", times=1)
    subject = f"outbox {uuid.uuid4()}"
    # The read-back finds no draft and no copy yet (404): sent, but not confirmable now.
    with pytest.raises(GraphOutcomeUnknown):
        operations.send(send_request(subject), ops.context())
    assert until(lambda: count(ops, ADMIN, "sentitems", subject) == 1)
    assert count(ops, ANNA, "inbox", subject) == 1


def test_a_resumed_send_waits_for_the_outbox_instead_of_sending_again(ops: Ops):
    ops.sandbox.control("PATCH", "limits", json={"sentCopyDelayMs": 2500})
    ops.sandbox.add_fault(method="POST", path=SEND_STEP, action="accept_then_drop", times=1)
    subject = f"resume {uuid.uuid4()}"
    operation_id = str(uuid.uuid4())
    saved: list[str | None] = []
    progress = recorded(saved)
    with pytest.raises(GraphOutcomeUnknown):
        operations.send(send_request(subject), ops.context(operation_id, progress=progress))
    assert saved and progress.get(SEND_ISSUED) == saved[0]  # recorded before the call
    # The retry while the message is in the Outbox: wait (re-scheduled), never resend.
    progress.resume = True
    with pytest.raises(GraphOutcomeUnknown):
        operations.send(send_request(subject), ops.context(operation_id, progress=progress))
    assert count(ops, ADMIN, "outbox", subject) == 1
    assert until(lambda: count(ops, ADMIN, "sentitems", subject) == 1)
    result = operations.send(send_request(subject), ops.context(operation_id, progress=progress))
    assert result.status == "sent" and result.message_id
    assert count(ops, ADMIN, "sentitems", subject) == 1
    assert count(ops, ANNA, "inbox", subject) == 1


def test_an_issued_send_whose_copy_never_appears_ends_unconfirmed(ops: Ops):
    subject = f"gone {uuid.uuid4()}"
    operation_id = str(uuid.uuid4())
    issued = Progress({SEND_ISSUED: "2026-01-01T00:00:00.000000Z"}, resume=True)
    ctx = ops.context(operation_id, progress=issued)
    ctx.settings = ops.settings.__class__(**{**ops.settings.__dict__, "send_confirm_seconds": 0})
    with pytest.raises(GraphOutcomeUnknown) as caught:
        operations.send(send_request(subject), ctx)
    assert type(caught.value).__name__ == "SendUnconfirmed"
    assert count(ops, ADMIN, "drafts", subject) == 0  # nothing was created
    assert count(ops, ANNA, "inbox", subject) == 0


# --- S1: definite failures leave no draft ------------------------------------------------------


def test_a_refused_send_deletes_its_draft(ops: Ops):
    ops.sandbox.add_fault(method="POST", path=SEND_STEP, action="status", status=400, times=1)
    subject = f"refused {uuid.uuid4()}"
    with pytest.raises(ValidationFailed):
        operations.send(send_request(subject), ops.context())
    assert count(ops, ADMIN, "drafts", subject) == 0
    assert count(ops, ADMIN, "sentitems", subject) == 0


def test_a_send_throttled_past_the_budget_deletes_its_draft(ops: Ops):
    ops.sandbox.add_fault(method="POST", path=SEND_STEP, action="status", status=429,
                          retryAfter=60, times=1)  # fmt: skip
    subject = f"throttled {uuid.uuid4()}"
    operation_id = str(uuid.uuid4())
    saved: list[str | None] = []
    progress = recorded(saved)
    with pytest.raises(Throttled):
        operations.send(send_request(subject), ops.context(operation_id, progress=progress))
    # Graph's Retry-After pauses the mailbox (our own look included): look after it.
    ops.limits_time.shift += 61
    assert count(ops, ADMIN, "drafts", subject) == 0
    # Refused for sure: the record is cleared, so the retry sends (once) instead of waiting.
    assert saved[-1] is None and progress.get(SEND_ISSUED) is None
    progress.resume = True
    operations.send(send_request(subject), ops.context(operation_id, progress=progress))
    assert count(ops, ADMIN, "sentitems", subject) == 1


def test_an_unknown_send_outcome_keeps_the_draft_for_the_resume(ops: Ops):
    # A 504 on /send and on the read-back: nobody knows, so nothing is deleted.
    ops.sandbox.add_fault(method="POST", path=SEND_STEP, action="status", status=504, times=1)
    ops.sandbox.add_fault(method="GET", path=r"/messages/[^/]+$", action="status", status=404)
    subject = f"unknown {uuid.uuid4()}"
    with pytest.raises(GraphOutcomeUnknown):
        operations.send(send_request(subject), ops.context())
    ops.sandbox.clear_faults()
    assert count(ops, ADMIN, "drafts", subject) == 1


# --- N4: a lost chunk is not a lost mail ----------------------------------------------------------


def test_a_lost_chunk_upload_answers_graph_unavailable_and_leaves_nothing(ops: Ops):
    ops.sandbox.add_fault(method="PUT", path=r"/upload/", action="accept_then_drop", times=1)
    subject = f"chunk {uuid.uuid4()}"
    request = send_request(
        subject,
        attachments=[{"name": "big.bin", "url": ops.file_url("big.bin", 5 * 1024 * 1024)}],
    )
    with pytest.raises(GraphUnavailable):
        operations.send(request, ops.context())
    assert count(ops, ADMIN, "drafts", subject) == 0
    assert count(ops, ANNA, "inbox", subject) == 0
