"""The send operation: draft-then-send from `from`'s mailbox, or one sendMail without a copy.

Draft-then-send is the normal path: large attachments need a draft for their upload session
anyway, the sent copy lands in `from`'s Sent Items, and the message carries our operation id
from the start. Only `saveToSentItems: false` uses sendMail, which can skip the copy.
"""

from __future__ import annotations

import logging
from datetime import datetime
from urllib.parse import quote

from shared import base64_content
from shared.errors import (
    AccessDenied,
    AppError,
    Detail,
    GraphOutcomeUnknown,
    MessageNotFound,
    SendUnconfirmed,
    ValidationFailed,
)
from shared.models import SendRequest, SendResult
from shared.operations import message_size
from shared.operations.attachments import UPLOAD_THRESHOLD, file_attachment
from shared.operations.compose import (
    INLINE_BUDGET,
    build_message,
    check_attachment_urls,
    check_sender,
    create_draft,
    decoded_sizes,
    delete_quietly,
    find_by_operation_id,
    mailbox_path,
    sender_denied,
)
from shared.operations.context import OperationContext
from shared.timestamps import iso, now_utc, parse_iso

log = logging.getLogger(__name__)


# What a resume concludes (resume_plan, pure).
SENT = "sent"  # a copy that is no longer a draft: the result
RESTART = "restart"  # nothing was sent: delete leftover drafts and send afresh
WAIT = "wait"  # /send was issued and the copy is not filed yet: look again later
UNCONFIRMED = "unconfirmed"  # issued, and nothing appeared within the confirm time
# The progress step recorded (persisted) right before `/send` is issued.
SEND_ISSUED = "sendIssuedAt"


def resume_plan(
    found: list[dict],
    in_outbox: list[dict],
    issued_at: datetime | None,
    now: datetime,
    confirm_seconds: float,
) -> str:
    """What a resumed send does, from what the mailbox holds and whether `/send` was issued.

    Exchange deletes the draft when it accepts `/send` but files the Sent Items copy only once
    the mail went out: in between the message sits in the Outbox, or is briefly nowhere. So an
    issued send with no copy is waited for (the queue re-schedules) rather than sent again.
    """
    if any(not m.get("isDraft", True) for m in found):
        return SENT
    if in_outbox:
        return WAIT
    if issued_at is None:
        return RESTART
    if any(m.get("isDraft", True) for m in found):
        # Still a draft: Graph flips isDraft when it accepts a send, so this one was not.
        return RESTART
    if (now - issued_at).total_seconds() < confirm_seconds:
        return WAIT
    return UNCONFIRMED


def _resume(sender: str, ctx: OperationContext) -> SendResult | None:
    """After an attempt that may have acted: the earlier result, or None to start afresh.

    Raises GraphOutcomeUnknown (re-scheduled) while an issued send is still on its way, and
    SendUnconfirmed when its copy never appeared.
    """
    issued = parse_iso(ctx.progress.get(SEND_ISSUED))
    found = find_by_operation_id(ctx, sender)
    outbox: list[dict] = []
    if issued or any(not m.get("isDraft", True) for m in found):
        # A message in the Outbox is on its way, not sent: its copy comes under another id.
        outbox = find_by_operation_id(ctx, sender, "outbox")
        leaving = {m["id"] for m in outbox}
        found = [m for m in found if m["id"] not in leaving]
    sent = [m for m in found if not m.get("isDraft", True)]
    plan = resume_plan(found, outbox, issued, now_utc(), ctx.settings.send_confirm_seconds)
    if plan == SENT:
        return SendResult(
            operation_id=ctx.operation_id,
            status="sent",
            message_id=sent[0]["id"],
            internet_message_id=sent[0].get("internetMessageId"),
        )
    if plan == WAIT:
        raise GraphOutcomeUnknown(
            "The mail was handed to Exchange; its Sent Items copy is not there yet."
        )
    if plan == UNCONFIRMED:
        raise SendUnconfirmed(
            "The mail was handed to Exchange but no Sent Items copy appeared; check the "
            "sender's Sent Items before sending it again."
        )
    for draft in found:
        delete_quietly(ctx, sender, draft["id"])
    if issued is not None:
        ctx.progress.record(SEND_ISSUED, None)  # the restart is a new send, with its own record
    return None


def send(request: SendRequest, ctx: OperationContext) -> SendResult:
    """Send the mail as `from`; returns once Graph accepted it (202).

    A resumed attempt (`ctx.progress.resume`: an earlier one may have acted) first looks for a
    message carrying the operation id, so a mail is never sent twice.
    Raises SenderNotAllowed, SendAsDenied, ValidationFailed, GraphOutcomeUnknown (the send
    request got no answer and the draft could not be checked), SendUnconfirmed and Graph's
    mapped errors. A definite failure of `/send` deletes the draft.
    """
    sender = check_sender(request, ctx)
    check_attachment_urls(request, ctx)
    if not request.save_to_sent_items:
        # No copy to look for: the one remaining exactly-once window (docs/operations.md).
        return _send_without_copy(request, sender, ctx)
    if ctx.progress.resume:
        earlier = _resume(sender, ctx)
        if earlier is not None:
            return earlier
    # The sending rate is booked before anything is composed: a message that cannot leave soon
    # is re-scheduled (queued) or refused with Retry-After (sync) without a draft made in vain.
    ctx.graph.pace_send(sender)
    message = create_draft(request, ctx)
    message_id = message["id"]
    path = f"{mailbox_path(sender)}/messages/{quote(message_id, safe='')}"
    try:
        # Recorded BEFORE the call: a crash or lost answer after it must resume, not restart.
        ctx.progress.record(SEND_ISSUED, iso(now_utc()))
        _issue_send(ctx, path)
    except GraphOutcomeUnknown:
        raise
    except AppError:
        # A definite failure (denied, throttled past the budget, 4xx, no record): not sent.
        # Anything else (a bug, the worker stopping) may have come after the send: kept.
        delete_quietly(ctx, sender, message_id)
        if ctx.progress.get(SEND_ISSUED):
            _forget_issued(ctx)
        raise
    return SendResult(
        operation_id=ctx.operation_id,
        status="sent",
        message_id=message_id,
        internet_message_id=message.get("internetMessageId"),
    )


def _forget_issued(ctx: OperationContext) -> None:
    """Clear the record of a send Graph definitely refused, so the retry starts afresh."""
    try:
        ctx.progress.record(SEND_ISSUED, None)
    except Exception:  # the original error matters more; the resume then waits and concludes
        log.warning("could not clear the send record of operation %s", ctx.operation_id)


def _issue_send(ctx: OperationContext, path: str) -> None:
    """POST /send; after a lost answer, read the message back to learn what happened.

    No longer a draft means it was sent; still a draft means it was not (Graph flips isDraft
    when it accepts the send), so one more send is safe; gone (404) means it is on its way
    (Outbox) or gone for another reason: outcome unknown, for the resume to settle.
    """
    try:
        ctx.graph.post(f"{path}/send")
        return
    except GraphOutcomeUnknown:
        pass
    try:
        state = ctx.graph.get(path, params={"$select": "id,isDraft"})
    except MessageNotFound as exc:
        raise GraphOutcomeUnknown(
            "Graph did not answer the send and the draft is gone: the mail is probably on its "
            "way; the Sent Items copy will tell."
        ) from exc
    except AppError as exc:
        raise GraphOutcomeUnknown(
            f"Graph did not answer the send and the draft could not be read ({exc.code})."
        ) from exc
    if state.get("isDraft", True):
        ctx.graph.post(f"{path}/send")


def _send_without_copy(request: SendRequest, sender: str, ctx: OperationContext) -> SendResult:
    """sendMail with saveToSentItems=false: everything must fit in one request."""
    message_size.check(request, decoded_sizes(request).values(), ctx.settings.message_max_bytes)
    attachments: list[dict] = []
    total = 0
    for i, att in enumerate(request.attachments):
        if not base64_content.present(att.content_bytes):
            raise ValidationFailed(
                "saveToSentItems=false needs all attachments as contentBytes.",
                details=[
                    Detail(
                        f"attachments[{i}].url",
                        "URL attachments need saveToSentItems=true (they are uploaded to a "
                        "draft, and a sent draft always keeps its copy)",
                    )
                ],
            )
        total += base64_content.encoded_length(att.content_bytes)
        attachments.append(file_attachment(att))
    if total > INLINE_BUDGET or total * 3 // 4 >= UPLOAD_THRESHOLD:
        raise ValidationFailed(
            "Attachments too large for a mail without a Sent Items copy.",
            details=[
                Detail(
                    "saveToSentItems",
                    "false works only when all attachments together stay under 2.5 MB of "
                    "base64 (bigger mails are sent from a draft, which keeps a copy)",
                )
            ],
        )
    ctx.graph.pace_send(sender)
    try:
        ctx.graph.post(
            f"{mailbox_path(sender)}/sendMail",
            json={
                "message": build_message(request, ctx.operation_id, attachments),
                "saveToSentItems": False,
            },
        )
    except AccessDenied as exc:
        raise sender_denied(exc, ctx) from exc
    return SendResult(operation_id=ctx.operation_id, status="sent")
