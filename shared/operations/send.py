"""The send operation: a new mail (draft-then-send from the sending mailbox, or one sendMail
without a copy), or a draft a person reviewed (`draftId`), sent exactly once.

Draft-then-send is the normal path: large attachments need a draft for their upload session
anyway, the sent copy lands in the sending mailbox's Sent Items, and the message carries our
operation id from the start (shared.operations.exactly_once). Only `saveToSentItems: false`
uses sendMail, which can skip the copy. With `fileTo` or `archive` the sent copy is then filed
and archived in the same operation (shared.operations.filing).
"""

from __future__ import annotations

from shared import base64_content
from shared.errors import (
    AccessDenied,
    AppError,
    Detail,
    SendAsDenied,
    SendOnBehalfDenied,
    ValidationFailed,
    send_on_behalf_hint,
)
from shared.models import SendRequest, SendResult
from shared.operations import message_size
from shared.operations.attachments import UPLOAD_THRESHOLD, file_attachment
from shared.operations.compose import (
    INLINE_BUDGET,
    MessageRequest,
    build_message,
    check_attachment_urls,
    check_sender,
    create_draft,
    decoded_sizes,
    mailbox_path,
    on_behalf,
    sender_denied,
)
from shared.operations.context import OperationContext
from shared.operations.exactly_once import send_once
from shared.operations.filing import send_and_file
from shared.operations.reviewed import existing_draft


def from_draft(request: SendRequest) -> bool:
    """The request sends an existing draft (`draftId` or `draftInternetMessageId`)."""
    return request.draft_id is not None or request.draft_internet_message_id is not None


def on_behalf_denied(request: MessageRequest, exc: SendAsDenied) -> AppError:
    """Exchange's Send As refusal of a send on behalf, said as what it is (with the grant)."""
    if not on_behalf(request):
        return exc
    return SendOnBehalfDenied(
        send_on_behalf_hint(request.from_ or "", request.sender or ""), graph=exc.graph
    )


def send(request: SendRequest, ctx: OperationContext) -> SendResult:
    """Send the mail as `from` (on behalf of it with `sender`); returns once Graph accepted it.

    A resumed attempt (`ctx.progress.resume`: an earlier one may have acted) first looks for a
    message carrying the operation id, so a mail is never sent twice.
    Raises SenderNotAllowed, SendAsDenied, SendOnBehalfDenied, ValidationFailed,
    MessageNotFound / DraftAlreadySent (draftId), GraphOutcomeUnknown (the send request got no
    answer and the draft could not be checked), SendUnconfirmed and Graph's mapped errors;
    with fileTo / archive also what shared.operations.filing.send_and_file raises (Pending
    while Exchange files the copy).
    """
    mailbox = check_sender(request, ctx)
    check_attachment_urls(request, ctx)

    def send_it() -> dict:
        if from_draft(request):
            return send_once(
                ctx, mailbox, lambda: existing_draft(request, ctx, mailbox), keep_drafts=True
            )
        return send_once(ctx, mailbox, lambda: create_draft(request, ctx))

    try:
        if not request.save_to_sent_items:
            # No copy to look for: the one remaining exactly-once window (docs/operations.md).
            return _send_without_copy(request, mailbox, ctx)
        sent = send_and_file(ctx, mailbox, send_it, request.file_to, request.archive)
    except SendAsDenied as exc:
        raise on_behalf_denied(request, exc) from exc
    return SendResult(
        operation_id=ctx.operation_id,
        status="sent",
        message_id=sent.message_id,
        internet_message_id=sent.internet_message_id,
        filed=sent.filed,
        archive=sent.archive,
    )


def _send_without_copy(request: SendRequest, sender: str, ctx: OperationContext) -> SendResult:
    """sendMail with saveToSentItems=false: everything must fit in one request."""
    message_size.check(request, decoded_sizes(request).values(), ctx.settings.message_max_bytes)
    attachments: list[dict] = []
    total = 0
    for i, att in enumerate(request.attachments):
        if not base64_content.present(att.content_bytes):
            kind = "url" if att.url is not None else "message"
            raise ValidationFailed(
                "saveToSentItems=false needs all attachments as contentBytes.",
                details=[
                    Detail(
                        f"attachments[{i}].{kind}",
                        "URL attachments and attached mails need saveToSentItems=true (they "
                        "are added to a draft, and a sent draft always keeps its copy)",
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
                "message": build_message(request, ctx.operation_id, attachments, mailbox=sender),
                "saveToSentItems": False,
            },
        )
    except AccessDenied as exc:
        raise sender_denied(exc, ctx) from exc
    return SendResult(operation_id=ctx.operation_id, status="sent")
