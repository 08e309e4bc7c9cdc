"""Building a Graph message from a send/draft request and creating it as a draft with files.

Shared by send and draft. Raises `SenderNotAllowed`, `ValidationFailed` (attachment URLs),
and whatever Graph or the attachment sources raise; a half-built draft is deleted on failure.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from shared import base64_content
from shared.errors import (
    SEND_AS_HINT,
    AccessDenied,
    AppError,
    Detail,
    GraphOutcomeUnknown,
    GraphUnavailable,
    SendAsDenied,
    SenderNotAllowed,
    ValidationFailed,
)
from shared.graph.client import mailbox_path
from shared.models import DraftRequest, Recipient, SendRequest
from shared.operations import message_size
from shared.operations.attachments import (
    UPLOAD_THRESHOLD,
    Source,
    add_small,
    file_attachment,
    from_base64,
    from_url,
    upload_large,
)
from shared.operations.context import OperationContext
from shared.operations.marks import graph_marks
from shared.urlsafety import check_attachment_url

log = logging.getLogger(__name__)

# Microsoft Graph's known issue "Attaching large files to messages with delegated permissions
# can fail": createUploadSession (files over 3 MB) works for a delegated sign-in only in its own
# mailbox, not in a shared or delegated one.
DELEGATED_UPLOAD_HINT = (
    "Exchange refused the upload of an attachment over 3 MB: with a delegated sign-in "
    "(service account or user) Microsoft Graph accepts large attachments only in the signed-in "
    "account's own mailbox, not in another sender mailbox. Send from an app connection, or "
    "keep each attachment under 3 MB."
)

# The extended property that carries our operation id on every message we create, so a retry
# after a crash or an unknown outcome can find the message (Drafts / Sent Items) before acting.
OPERATION_ID_GUID = "3f5c8a2e-7b1d-4e6f-9a0c-2d4b6e8f1a3c"
OPERATION_ID_PROPERTY = f"String {{{OPERATION_ID_GUID}}} Name OperationId"
# Base64 we put on the create request itself; the rest is POSTed per attachment so no single
# request nears Graph's 4 MB cap.
INLINE_BUDGET = 2_500_000


def default_sender(request: SendRequest | DraftRequest, ctx: OperationContext) -> str:
    """Fill in an omitted `from`: a `user`-mode connection sends as the signed-in `user`;
    every other mode needs `from` (ValidationFailed). Returns the sender; idempotent."""
    if request.from_ is None:
        if ctx.connection.mode != "user" or not request.user:
            raise ValidationFailed(
                f"Say which mailbox sends: connection {ctx.connection.name!r} is in "
                f"{ctx.connection.mode} mode, where `from` is required.",
                details=[Detail("from", f"required for connections in {ctx.connection.mode} mode")],
            )
        request.from_ = request.user
    return request.from_


def check_sender(request: SendRequest | DraftRequest, ctx: OperationContext) -> str:
    """Fill in a default `from` (default_sender), then raise SenderNotAllowed unless it is on
    the connection's allowedSenders; returns the sender."""
    sender = default_sender(request, ctx)
    if not ctx.connection.sender_allowed(sender):
        raise SenderNotAllowed(
            f"Connection {ctx.connection.name!r} may not send as this address; "
            "add it (or *@its-domain) to the connection's allowedSenders.",
            details=[Detail("from", "not on the connection's allowedSenders")],
        )
    return sender


def check_attachment_urls(request: SendRequest | DraftRequest, ctx: OperationContext) -> None:
    """Check every attachment URL against the connection's policy, reporting all at once."""
    problems: list[Detail] = []
    for i, att in enumerate(request.attachments):
        if att.url is None:
            continue
        kwargs = {"resolve": ctx.resolve} if ctx.resolve else {}
        try:
            check_attachment_url(
                att.url,
                field=f"attachments[{i}].url",
                allowed_hosts=ctx.connection.attachment_url_hosts,
                allow_private=ctx.connection.allow_private_attachment_hosts,
                **kwargs,
            )
        except ValidationFailed as exc:
            problems.extend(exc.details)
    if problems:
        raise ValidationFailed("An attachment URL is not allowed.", details=problems)


def _recipient(value: str | Recipient) -> dict:
    if isinstance(value, str):
        return {"emailAddress": {"address": value}}
    address: dict = {"address": value.address}
    if value.name:
        address["name"] = value.name
    return {"emailAddress": address}


def build_message(
    request: SendRequest | DraftRequest, operation_id: str, attachments: list[dict]
) -> dict:
    """The Graph message resource for `request` (pure)."""
    message: dict = {
        "subject": request.subject,
        "importance": request.importance,
        "toRecipients": [_recipient(r) for r in request.to],
        "ccRecipients": [_recipient(r) for r in request.cc],
        "bccRecipients": [_recipient(r) for r in request.bcc],
        "replyTo": [_recipient(r) for r in request.reply_to],
        "singleValueExtendedProperties": [{"id": OPERATION_ID_PROPERTY, "value": operation_id}],
        **graph_marks(
            categories=request.categories,
            flag=request.flag,
            is_read_receipt_requested=request.is_read_receipt_requested,
            is_delivery_receipt_requested=request.is_delivery_receipt_requested,
        ),
    }
    if request.body is not None:
        message["body"] = {
            "contentType": "HTML" if request.body.content_type == "html" else "Text",
            "content": request.body.content,
        }
    if request.headers:
        message["internetMessageHeaders"] = [
            {"name": k, "value": v} for k, v in request.headers.items()
        ]
    if attachments:
        message["attachments"] = attachments
    return message


def _inline_split(request: SendRequest | DraftRequest) -> tuple[list[dict], list[int]]:
    """Base64 attachments that fit on the create request, and indexes of the rest."""
    inline: list[dict] = []
    rest: list[int] = []
    budget = INLINE_BUDGET
    for i, att in enumerate(request.attachments):
        if base64_content.present(att.content_bytes):
            length = base64_content.encoded_length(att.content_bytes)
            if length <= budget and base64_content.decoded_size(att.content_bytes) < (
                UPLOAD_THRESHOLD
            ):
                inline.append(file_attachment(att))
                budget -= length
                continue
        rest.append(i)
    return inline, rest


def _open(request: SendRequest | DraftRequest, index: int, ctx: OperationContext) -> Source:
    att = request.attachments[index]
    if base64_content.present(att.content_bytes):
        return from_base64(att)
    return from_url(
        att,
        field=f"attachments[{index}].url",
        connection=ctx.connection,
        session=ctx.http,
        max_bytes=ctx.settings.attachment_max_bytes,
        resolve=ctx.resolve,
        guarded=ctx.guarded_http,
    )


def sender_denied(exc: AccessDenied, ctx: OperationContext) -> AppError:
    """Graph's access denied on the sender's mailbox, said clearly for delegated connections.

    Writing the draft in another's mailbox (or sending through its URL) needs Full Access,
    which a sender mailbox needs next to Send As: the grant hint instead of a bare "access
    denied". For app connections it stays access_denied (the app's role or Exchange RBAC
    scope).
    """
    if ctx.connection.mode == "app":
        return exc
    return SendAsDenied(SEND_AS_HINT, graph=exc.graph)


def decoded_sizes(request: SendRequest | DraftRequest) -> dict[int, int]:
    """{index: size in bytes} of the base64 attachments (URL ones are known once opened)."""
    return {
        i: base64_content.decoded_size(att.content_bytes)
        for i, att in enumerate(request.attachments)
        if base64_content.present(att.content_bytes)
    }


def create_draft(request: SendRequest | DraftRequest, ctx: OperationContext) -> dict:
    """Create the message in `from`'s Drafts with all attachments; returns Graph's message.

    Raises PayloadTooLarge before anything is uploaded when the message would be over
    MESSAGE_MAX_BYTES (a URL attachment: as soon as its size is known, the half-built draft
    is deleted).
    """
    limit = ctx.settings.message_max_bytes
    sizes = decoded_sizes(request)
    message_size.check(request, sizes.values(), limit)
    inline, rest = _inline_split(request)
    for i in rest:  # the cheap size check first, before Graph sees anything
        att = request.attachments[i]
        if base64_content.present(att.content_bytes) and base64_content.decoded_size(
            att.content_bytes
        ) > (ctx.settings.attachment_max_bytes):
            raise ValidationFailed(
                "An attachment is too large.",
                details=[Detail(f"attachments[{i}]", "larger than ATTACHMENT_MAX_BYTES")],
            )
    sender = default_sender(request, ctx)
    base = mailbox_path(sender)
    try:
        message = ctx.graph.post(
            f"{base}/messages", json=build_message(request, ctx.operation_id, inline)
        )
    except AccessDenied as exc:
        raise sender_denied(exc, ctx) from exc
    message_id = message["id"]
    try:
        for i in rest:
            source = _open(request, i, ctx)
            try:
                if i not in sizes:  # a URL: its size is known now, before a byte goes up
                    sizes[i] = source.size
                    message_size.check(request, sizes.values(), limit)
                if source.size > UPLOAD_THRESHOLD:
                    try:
                        upload_large(ctx.graph, sender, message_id, source)
                    except AccessDenied as exc:
                        if ctx.connection.mode == "app":
                            raise
                        raise AccessDenied(DELEGATED_UPLOAD_HINT, graph=exc.graph) from exc
                else:
                    add_small(ctx.graph, sender, message_id, source)
            finally:
                source.close()
    except GraphOutcomeUnknown as exc:
        # A lost answer while building the draft (e.g. a chunk PUT): the draft goes, and
        # nothing was sent, so the caller may simply try again.
        delete_quietly(ctx, sender, message_id)
        raise GraphUnavailable(
            "Graph did not answer while the attachments were uploaded; nothing was sent. "
            "Retry later.",
            retry_after=exc.retry_after or 5.0,
        ) from exc
    except BaseException:
        delete_quietly(ctx, sender, message_id)
        raise
    return message


def delete_quietly(ctx: OperationContext, mailbox: str, message_id: str) -> None:
    """Remove a half-built draft; failure here must not hide the original error."""
    try:
        ctx.graph.request(
            "DELETE", f"{mailbox_path(mailbox)}/messages/{quote(message_id, safe='')}"
        )
    except AppError as exc:
        log.warning("could not delete draft of operation %s: %s", ctx.operation_id, exc.code)


def find_by_operation_id(
    ctx: OperationContext, mailbox: str, folder: str | None = None
) -> list[dict]:
    """Messages in `mailbox` (any folder, or only `folder`, e.g. "outbox") carrying our id."""
    literal = ctx.operation_id.replace("'", "''")
    where = f"/mailFolders/{folder}" if folder else ""
    data = ctx.graph.get(
        f"{mailbox_path(mailbox)}{where}/messages",
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
