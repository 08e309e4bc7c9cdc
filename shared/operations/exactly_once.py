"""Sending a prepared draft exactly once: the `sendIssuedAt` checkpoint before `/send`, the
read-back after a lost answer, and the resume that finds the copy an earlier attempt sent.

Every operation that sends (send, send of a reviewed draft, reply, forward) prepares a draft
carrying its operation id (compose.OPERATION_ID_PROPERTY) in the sending mailbox and hands it
to `send_once`; docs/architecture.md ("Exactly once") describes the reasoning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from urllib.parse import quote

from shared.errors import AppError, GraphOutcomeUnknown, MessageNotFound, SendUnconfirmed
from shared.operations.compose import delete_quietly, find_by_operation_id, mailbox_path
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


def resume(ctx: OperationContext, mailbox: str, *, keep_drafts: bool = False) -> dict | None:
    """After an attempt that may have acted: the sent message (id, internetMessageId,
    conversationId), or None to prepare and send afresh. Leftover drafts of earlier attempts
    are deleted, unless `keep_drafts` (a person's draft we send by id stays).

    Raises GraphOutcomeUnknown (re-scheduled) while an issued send is still on its way, and
    SendUnconfirmed when its copy never appeared.
    """
    issued = parse_iso(ctx.progress.get(SEND_ISSUED))
    found = find_by_operation_id(ctx, mailbox)
    outbox: list[dict] = []
    if issued or any(not m.get("isDraft", True) for m in found):
        # A message in the Outbox is on its way, not sent: its copy comes under another id.
        outbox = find_by_operation_id(ctx, mailbox, "outbox")
        leaving = {m["id"] for m in outbox}
        found = [m for m in found if m["id"] not in leaving]
    sent = [m for m in found if not m.get("isDraft", True)]
    plan = resume_plan(found, outbox, issued, now_utc(), ctx.settings.send_confirm_seconds)
    if plan == SENT:
        return sent[0]
    if plan == WAIT:
        raise GraphOutcomeUnknown(
            "The mail was handed to Exchange; its Sent Items copy is not there yet."
        )
    if plan == UNCONFIRMED:
        raise SendUnconfirmed(
            "The mail was handed to Exchange but no Sent Items copy appeared; check the "
            "sender's Sent Items before sending it again."
        )
    if not keep_drafts:
        for draft in found:
            delete_quietly(ctx, mailbox, draft["id"])
    if issued is not None:
        ctx.progress.record(SEND_ISSUED, None)  # the restart is a new send, with its own record
    return None


def send_once(
    ctx: OperationContext,
    mailbox: str,
    prepare: Callable[[], dict],
    *,
    keep_drafts: bool = False,
) -> dict:
    """Send the draft `prepare()` makes (in `mailbox`, carrying the operation id) exactly once;
    returns the message (id, internetMessageId, conversationId where Graph gave them).

    A resumed attempt (`ctx.progress.resume`) first looks for a message carrying the operation
    id, so a mail is never sent twice. A definite failure of `/send` deletes the draft (not
    with `keep_drafts`). Raises MailboxBusy (the sending rate, before anything is made),
    GraphOutcomeUnknown, SendUnconfirmed and Graph's mapped errors.
    """
    if ctx.progress.resume:
        earlier = resume(ctx, mailbox, keep_drafts=keep_drafts)
        if earlier is not None:
            return earlier
    # The sending rate is booked before anything is composed: a message that cannot leave soon
    # is re-scheduled (queued) or refused with Retry-After (sync) without a draft made in vain.
    # Replies, forwards and reviewed drafts are sends of `mailbox` like any other.
    ctx.graph.pace_send(mailbox)
    message = prepare()
    message_id = message["id"]
    path = f"{mailbox_path(mailbox)}/messages/{quote(message_id, safe='')}"
    try:
        # Recorded BEFORE the call: a crash or lost answer after it must resume, not restart.
        ctx.progress.record(SEND_ISSUED, iso(now_utc()))
        issue_send(ctx, path)
    except GraphOutcomeUnknown:
        raise
    except AppError:
        # A definite failure (denied, throttled past the budget, 4xx, no record): not sent.
        # Anything else (a bug, the worker stopping) may have come after the send: kept.
        if not keep_drafts:
            delete_quietly(ctx, mailbox, message_id)
        if ctx.progress.get(SEND_ISSUED):
            _forget_issued(ctx)
        raise
    return message


def _forget_issued(ctx: OperationContext) -> None:
    """Clear the record of a send Graph definitely refused, so the retry starts afresh."""
    try:
        ctx.progress.record(SEND_ISSUED, None)
    except Exception:  # the original error matters more; the resume then waits and concludes
        log.warning("could not clear the send record of operation %s", ctx.operation_id)


def issue_send(ctx: OperationContext, path: str) -> None:
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
