"""The reply and forward operations: answer a mail in its own conversation, from the mailbox
that holds it, exactly once.

Graph makes the answer: createReply / createReplyAll / createForward on the original in
`mailbox` create a draft there that carries In-Reply-To / References and the original's
conversationId (createReply: "Specify either a comment or the body property of the message
parameter", so `comment` goes as Graph's comment and `body` as the message's body, which then
replaces the whole body). A reply's recipients are Graph's (RFC 2822: replyTo, else from; for
reply-all also the original's To and Cc, without the replying mailbox); the request's `to`
and `cc` are added to them. Then attachments, then `/send` through the mailbox's URL, so the
copy lands in its Sent Items (shared.operations.exactly_once); with `fileTo` / `archive` that
copy is then filed and archived (shared.operations.filing).
"""

from __future__ import annotations

from urllib.parse import quote

from shared.errors import SendAsDenied
from shared.graph.client import mailbox_path
from shared.models import ForwardRequest, Recipient, ReplyRequest, ReplyResult
from shared.operations.compose import (
    check_attachment_urls,
    check_sender,
    create_draft,
)
from shared.operations.context import OperationContext
from shared.operations.exactly_once import send_once
from shared.operations.filing import send_and_file
from shared.operations.lookup import read_message
from shared.operations.send import on_behalf_denied


def _address(value: str | Recipient) -> str:
    return value if isinstance(value, str) else value.address


def _added(existing: list[dict], extra: list[str | Recipient]) -> list[dict] | None:
    """Graph's recipients plus the request's (each address once), or None when none is new."""
    have = {str((r.get("emailAddress") or {}).get("address", "")).casefold() for r in existing}
    new = []
    for value in extra:
        address = _address(value)
        if address.casefold() in have:
            continue
        have.add(address.casefold())
        email = {"address": address}
        if isinstance(value, Recipient) and value.name:
            email["name"] = value.name
        new.append({"emailAddress": email})
    return [*existing, *new] if new else None


def _answer(
    request: ReplyRequest | ForwardRequest, ctx: OperationContext, action: str
) -> ReplyResult:
    mailbox = check_sender(request, ctx)
    check_attachment_urls(request, ctx)
    base = mailbox_path(mailbox)

    def create(message: dict) -> dict:
        original = read_message(ctx, mailbox, request.message_id, request.internet_message_id)
        payload: dict = {"message": message}
        if request.comment is not None:
            payload["comment"] = request.comment
        return ctx.graph.post(
            f"{base}/messages/{quote(original['id'], safe='')}/{action}", json=payload
        )

    def finish(draft: dict) -> dict:
        if not isinstance(request, ReplyRequest):
            return draft
        changes = {}
        for field, extra in (("toRecipients", request.to), ("ccRecipients", request.cc)):
            combined = _added(draft.get(field) or [], extra)
            if combined is not None:
                changes[field] = combined
        if not changes:
            return draft
        path = f"{base}/messages/{quote(draft['id'], safe='')}"
        return {
            **draft,
            **(ctx.graph.request("PATCH", path, json=changes, idempotent=True).data or {}),
        }

    def send_it() -> dict:
        return send_once(
            ctx, mailbox, lambda: create_draft(request, ctx, create=create, finish=finish)
        )

    try:
        sent = send_and_file(ctx, mailbox, send_it, request.file_to, request.archive)
    except SendAsDenied as exc:
        raise on_behalf_denied(request, exc) from exc
    return ReplyResult(
        operation_id=ctx.operation_id,
        status="sent",
        message_id=sent.message_id,
        internet_message_id=sent.internet_message_id,
        conversation_id=sent.conversation_id,
        filed=sent.filed,
        archive=sent.archive,
    )


def reply(request: ReplyRequest, ctx: OperationContext) -> ReplyResult:
    """Reply (or with `replyAll` reply to everyone) to the mail in `mailbox`; returns the sent
    answer's ids and the conversation id.

    Raises SenderNotAllowed, MessageNotFound (no such mail in `mailbox`), ValidationFailed,
    SendAsDenied / SendOnBehalfDenied, GraphOutcomeUnknown, SendUnconfirmed, Graph's mapped
    errors, and with fileTo / archive what shared.operations.filing.send_and_file raises.
    """
    return _answer(request, ctx, "createReplyAll" if request.reply_all else "createReply")


def forward(request: ForwardRequest, ctx: OperationContext) -> ReplyResult:
    """Forward the mail in `mailbox` (with its attachments) to `to`; raises like reply."""
    return _answer(request, ctx, "createForward")
