"""The send operation: draft-then-send from `from`'s mailbox, or one sendMail without a copy.

Draft-then-send is the normal path: large attachments need a draft for their upload session
anyway, the sent copy lands in `from`'s Sent Items, and the message carries our operation id
from the start. Only `saveToSentItems: false` uses sendMail, which can skip the copy.
"""

from __future__ import annotations

import base64
from urllib.parse import quote

from shared.attachments import UPLOAD_THRESHOLD, file_attachment
from shared.errors import Detail, GraphOutcomeUnknown, ValidationFailed
from shared.models import SendRequest, SendResult
from shared.operations.compose import (
    INLINE_BUDGET,
    OPERATION_ID_PROPERTY,
    build_message,
    check_attachment_urls,
    check_sender,
    create_draft,
    delete_quietly,
    mailbox_path,
)
from shared.operations.context import OperationContext


def find_by_operation_id(ctx: OperationContext, mailbox: str) -> list[dict]:
    """Messages in `mailbox` (any folder: Drafts, Outbox, Sent Items, ...) carrying our id."""
    literal = ctx.operation_id.replace("'", "''")
    data = ctx.graph.get(
        f"{mailbox_path(mailbox)}/messages",
        params={
            "$filter": (
                f"singleValueExtendedProperties/Any(ep: ep/id eq '{OPERATION_ID_PROPERTY}' "
                f"and ep/value eq '{literal}')"
            ),
            "$select": "id,isDraft,internetMessageId,parentFolderId",
            "$top": "10",
        },
    )
    return list((data or {}).get("value", []))


def _resume(request: SendRequest, ctx: OperationContext) -> SendResult | None:
    """After an attempt that may have acted: the earlier result, or None to start afresh.

    A copy that is no longer a draft was sent: that is the result. Drafts left behind were
    never sent (possibly half-built, e.g. a crash during an upload), so they are deleted and
    the send starts over.
    """
    found = find_by_operation_id(ctx, request.from_)
    sent = [m for m in found if not m.get("isDraft", True)]
    if sent:
        return SendResult(
            operation_id=ctx.operation_id,
            status="sent",
            message_id=sent[0]["id"],
            internet_message_id=sent[0].get("internetMessageId"),
        )
    for draft in found:
        delete_quietly(ctx, request.from_, draft["id"])
    return None


def send(request: SendRequest, ctx: OperationContext, *, resume: bool = False) -> SendResult:
    """Send the mail as `from`; returns once Graph accepted it (202).

    `resume=True` (a retry of an operation that may already have acted) first looks for a
    message carrying the operation id, so a mail is never sent twice.
    Raises SenderNotAllowed, SendAsDenied, ValidationFailed, GraphOutcomeUnknown (the send
    request got no answer and the draft could not be checked) and Graph's mapped errors.
    """
    check_sender(request, ctx)
    check_attachment_urls(request, ctx)
    if not request.save_to_sent_items:
        # No copy to look for: the one remaining exactly-once window (docs/operations.md).
        return _send_without_copy(request, ctx)
    if resume:
        earlier = _resume(request, ctx)
        if earlier is not None:
            return earlier
    message = create_draft(request, ctx)
    message_id = message["id"]
    path = f"{mailbox_path(request.from_)}/messages/{quote(message_id, safe='')}"
    try:
        ctx.graph.post(f"{path}/send")
    except GraphOutcomeUnknown:
        # The answer was lost. A message that is no longer a draft was sent; one that still is
        # was not (Graph flips isDraft when it accepts the send), so one more send is safe.
        state = ctx.graph.get(path, params={"$select": "id,isDraft"})
        if state.get("isDraft", True):
            ctx.graph.post(f"{path}/send")
    return SendResult(
        operation_id=ctx.operation_id,
        status="sent",
        message_id=message_id,
        internet_message_id=message.get("internetMessageId"),
    )


def _send_without_copy(request: SendRequest, ctx: OperationContext) -> SendResult:
    """sendMail with saveToSentItems=false: everything must fit in one request."""
    attachments: list[dict] = []
    total = 0
    for i, att in enumerate(request.attachments):
        if att.content_bytes is None:
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
        total += len(att.content_bytes)
        attachments.append(file_attachment(att, base64.b64decode(att.content_bytes)))
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
    ctx.graph.post(
        f"{mailbox_path(request.from_)}/sendMail",
        json={
            "message": build_message(request, ctx.operation_id, attachments),
            "saveToSentItems": False,
        },
    )
    return SendResult(operation_id=ctx.operation_id, status="sent")
