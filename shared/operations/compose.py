"""Building a Graph message from a request and creating it as a draft with its attachments.

Shared by send, draft, reply and forward. Which mailbox composes and sends (`sending_mailbox`):
`from`'s for a plain mail, the delegate's (`sender`) for one sent on behalf of `from`, and the
original's for a reply or forward. Raises `SenderNotAllowed`, `ValidationFailed` (attachment
URLs), and whatever Graph or the attachment sources raise; a half-built draft is deleted on
failure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
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
from shared.models import DraftRequest, ForwardRequest, Recipient, ReplyRequest, SendRequest
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
from shared.operations.items import add_item, item_attachment, item_size
from shared.operations.marks import graph_marks
from shared.urlsafety import check_attachment_url

log = logging.getLogger(__name__)

MessageRequest = SendRequest | DraftRequest | ReplyRequest | ForwardRequest

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


def is_answer(request: MessageRequest) -> bool:
    """A reply or forward (composed in the original's mailbox)."""
    return isinstance(request, ReplyRequest | ForwardRequest)


def default_sender(request: MessageRequest, ctx: OperationContext) -> str:
    """Fill in an omitted `from`: a reply or forward is from the original's mailbox; a
    `user`-mode connection sends as the signed-in `user`; every other mode needs `from`
    (ValidationFailed). Returns the sender; idempotent."""
    if request.from_ is None and isinstance(request, ReplyRequest | ForwardRequest):
        request.from_ = request.mailbox
    if request.from_ is None:
        if ctx.connection.mode != "user" or not request.user:
            raise ValidationFailed(
                f"Say which mailbox sends: connection {ctx.connection.name!r} is in "
                f"{ctx.connection.mode} mode, where `from` is required.",
                details=[Detail("from", f"required for connections in {ctx.connection.mode} mode")],
            )
        request.from_ = request.user
    return request.from_


def on_behalf(request: MessageRequest) -> bool:
    """`sender` names a delegate other than `from`: a send on behalf of `from`."""
    return bool(
        request.sender and request.from_ and request.sender.casefold() != request.from_.casefold()
    )


def sending_mailbox(request: MessageRequest) -> str:
    """The mailbox whose URL composes and sends (so whose Sent Items gets the copy): the
    original's for an answer, the delegate's for a send on behalf (Send on Behalf grants no
    Full Access on `from`), else `from`. Call after default_sender."""
    if isinstance(request, ReplyRequest | ForwardRequest):
        return request.mailbox
    if on_behalf(request):
        return request.sender or ""
    return request.from_ or ""


def _allowed(ctx: OperationContext, address: str, field: str) -> None:
    if not ctx.connection.sender_allowed(address):
        raise SenderNotAllowed(
            f"Connection {ctx.connection.name!r} may not act on this mailbox; add it (or "
            "*@its-domain) to the connection's allowedSenders.",
            details=[Detail(field, "not on the connection's allowedSenders")],
        )


def check_sender(request: MessageRequest, ctx: OperationContext) -> str:
    """Fill in a default `from` (default_sender), then raise SenderNotAllowed unless every
    mailbox the request acts on is on the connection's allowedSenders: `from`, a delegate
    `sender`, an answer's `mailbox`, and the mailboxes of attached mails. Returns the sending
    mailbox (sending_mailbox)."""
    sender = default_sender(request, ctx)
    if is_answer(request):
        _allowed(ctx, sending_mailbox(request), "mailbox")
    _allowed(ctx, sender, "from")
    if on_behalf(request):
        _allowed(ctx, request.sender or "", "sender")
    for i, att in enumerate(request.attachments):
        if att.message is not None:
            _allowed(ctx, att.message.mailbox, f"attachments[{i}].message.mailbox")
    return sending_mailbox(request)


def check_attachment_urls(request: MessageRequest, ctx: OperationContext) -> None:
    """Check every attachment URL against the connection's policy, reporting all at once."""
    problems: list[Detail] = []
    for i, att in enumerate(request.attachments):
        if att.url is None:
            continue
        try:
            check_attachment_url(
                att.url,
                field=f"attachments[{i}].url",
                allowed_hosts=ctx.connection.attachment_url_hosts,
                allow_private=ctx.connection.allow_private_attachment_hosts,
                resolve=ctx.resolve,
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


def _marks(request: MessageRequest) -> dict:
    return graph_marks(
        categories=request.categories,
        flag=request.flag,
        is_read_receipt_requested=request.is_read_receipt_requested,
        is_delivery_receipt_requested=request.is_delivery_receipt_requested,
    )


def _senders(request: MessageRequest, mailbox: str | None) -> dict:
    """`from` when it is not the sending mailbox itself; `sender` for a send on behalf."""
    out: dict = {}
    if request.from_ and mailbox and request.from_.casefold() != mailbox.casefold():
        out["from"] = _recipient(request.from_)
    if on_behalf(request):
        out["sender"] = _recipient(request.sender or "")
    return out


def build_message(
    request: MessageRequest,
    operation_id: str,
    attachments: list[dict],
    *,
    mailbox: str | None = None,
) -> dict:
    """The Graph message resource for `request` (pure); `mailbox` is the sending mailbox.

    For a reply the recipients Graph derives from the original stay (the request's `to`/`cc`
    are added afterwards), and an empty subject keeps Graph's "RE:"/"FW:" one.
    """
    answer = is_answer(request)
    message: dict = {
        "importance": request.importance,
        "singleValueExtendedProperties": [{"id": OPERATION_ID_PROPERTY, "value": operation_id}],
        **_senders(request, mailbox),
        **_marks(request),
    }
    if not answer or request.subject:
        message["subject"] = request.subject
    if not isinstance(request, ReplyRequest):
        message["toRecipients"] = [_recipient(r) for r in request.to]
        message["ccRecipients"] = [_recipient(r) for r in request.cc]
    if request.bcc or not answer:
        message["bccRecipients"] = [_recipient(r) for r in request.bcc]
    if request.reply_to or not answer:
        message["replyTo"] = [_recipient(r) for r in request.reply_to]
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


def patch_message(request: SendRequest | DraftRequest, operation_id: str, mailbox: str) -> dict:
    """The PATCH for a draft a person made: the fields the request gives (not at their
    default: an empty list or subject, importance normal, leaves the draft's value) and the
    operation id, so a resumed attempt finds the draft it touched."""
    patch: dict = {
        "singleValueExtendedProperties": [{"id": OPERATION_ID_PROPERTY, "value": operation_id}],
        **_senders(request, mailbox),
        **_marks(request),
    }
    for name, values in (
        ("toRecipients", request.to),
        ("ccRecipients", request.cc),
        ("bccRecipients", request.bcc),
        ("replyTo", request.reply_to),
    ):
        if values:
            patch[name] = [_recipient(r) for r in values]
    if request.subject:
        patch["subject"] = request.subject
    if request.importance != "normal":
        patch["importance"] = request.importance
    if request.body is not None:
        patch["body"] = {
            "contentType": "HTML" if request.body.content_type == "html" else "Text",
            "content": request.body.content,
        }
    return patch


def _inline_split(request: MessageRequest) -> tuple[list[dict], list[int]]:
    """Base64 attachments that fit on the create request, and indexes of the rest."""
    inline: list[dict] = []
    rest: list[int] = []
    budget = INLINE_BUDGET
    for i, att in enumerate(request.attachments):
        if att.message is None and base64_content.present(att.content_bytes):
            length = base64_content.encoded_length(att.content_bytes)
            if length <= budget and base64_content.decoded_size(att.content_bytes) < (
                UPLOAD_THRESHOLD
            ):
                inline.append(file_attachment(att))
                budget -= length
                continue
        rest.append(i)
    return inline, rest


def _open(request: MessageRequest, index: int, ctx: OperationContext) -> Source:
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


def decoded_sizes(request: MessageRequest) -> dict[int, int]:
    """{index: size in bytes} of the base64 attachments (URL ones are known once opened)."""
    return {
        i: base64_content.decoded_size(att.content_bytes)
        for i, att in enumerate(request.attachments)
        if att.message is None and base64_content.present(att.content_bytes)
    }


def prepare_attachments(
    request: MessageRequest, ctx: OperationContext
) -> tuple[dict[int, int], dict[int, dict]]:
    """Before anything is created: the known attachment sizes and the attached mails (read
    from their mailboxes now, so a missing one fails early). Raises PayloadTooLarge when the
    message would be over MESSAGE_MAX_BYTES, ValidationFailed for an attachment over
    ATTACHMENT_MAX_BYTES, and what reading an attached mail raises."""
    sizes = decoded_sizes(request)
    items = {
        i: item_attachment(ctx, att, f"attachments[{i}]")
        for i, att in enumerate(request.attachments)
        if att.message is not None
    }
    sizes.update({i: item_size(item) for i, item in items.items()})
    message_size.check(request, sizes.values(), ctx.settings.message_max_bytes)
    for i, size in sizes.items():  # the cheap size check first, before Graph sees anything
        if i not in items and size > ctx.settings.attachment_max_bytes:
            raise ValidationFailed(
                "An attachment is too large.",
                details=[Detail(f"attachments[{i}]", "larger than ATTACHMENT_MAX_BYTES")],
            )
    return sizes, items


def add_attachments(
    request: MessageRequest,
    ctx: OperationContext,
    mailbox: str,
    message_id: str,
    indexes: list[int],
    sizes: dict[int, int],
    items: dict[int, dict],
) -> None:
    """Add the request's attachments `indexes` to the message: attached mails as items, files
    over 3 MB through an upload session, the others by POST. A URL's size is checked against
    the message limit as soon as it is known, before a byte goes up."""
    limit = ctx.settings.message_max_bytes
    for i in indexes:
        if i in items:
            add_item(ctx, mailbox, message_id, items[i])
            continue
        source = _open(request, i, ctx)
        try:
            if i not in sizes:
                sizes[i] = source.size
                message_size.check(request, sizes.values(), limit)
            if source.size > UPLOAD_THRESHOLD:
                try:
                    upload_large(ctx.graph, mailbox, message_id, source)
                except AccessDenied as exc:
                    if ctx.connection.mode == "app":
                        raise
                    raise AccessDenied(DELEGATED_UPLOAD_HINT, graph=exc.graph) from exc
            else:
                add_small(ctx.graph, mailbox, message_id, source)
        finally:
            source.close()


Create = Callable[[dict], dict]


def create_draft(
    request: MessageRequest,
    ctx: OperationContext,
    *,
    create: Create | None = None,
    finish: Callable[[dict], dict] | None = None,
) -> dict:
    """Create the message in the sending mailbox's Drafts with all attachments; returns
    Graph's message.

    `create(message)` makes the draft from the message JSON (default: POST …/messages; a
    reply uses createReply); `finish(draft)` may change it before the attachments go up (and
    returns it). Raises PayloadTooLarge before anything is uploaded when the message would be
    over MESSAGE_MAX_BYTES (a URL attachment: as soon as its size is known, the half-built
    draft is deleted).
    """
    sizes, items = prepare_attachments(request, ctx)
    inline, rest = _inline_split(request)
    mailbox = sending_mailbox(request)
    base = mailbox_path(mailbox)
    message_json = build_message(request, ctx.operation_id, inline, mailbox=mailbox)
    try:
        if create is None:
            message = ctx.graph.post(f"{base}/messages", json=message_json)
        else:
            message = create(message_json)
    except AccessDenied as exc:
        raise sender_denied(exc, ctx) from exc
    message_id = message["id"]
    try:
        if finish is not None:
            message = finish(message)
        add_attachments(request, ctx, mailbox, message_id, rest, sizes, items)
    except GraphOutcomeUnknown as exc:
        # A lost answer while building the draft (e.g. a chunk PUT): the draft goes, and
        # nothing was sent, so the caller may simply try again.
        delete_quietly(ctx, mailbox, message_id)
        raise GraphUnavailable(
            "Graph did not answer while the attachments were uploaded; nothing was sent. "
            "Retry later.",
            retry_after=exc.retry_after or 5.0,
        ) from exc
    except BaseException:
        delete_quietly(ctx, mailbox, message_id)
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
            "$select": "id,isDraft,internetMessageId,parentFolderId,conversationId,webLink",
            "$top": "10",
        },
    )
    return list((data or {}).get("value", []))
