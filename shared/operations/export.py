"""The export operation: a message's MIME as .eml, answered as a stream or PUT to an archive URL."""

from __future__ import annotations

from urllib.parse import quote

from shared.downloads import Download, safe_filename
from shared.errors import Detail, SenderNotAllowed, ValidationFailed
from shared.graph.client import mailbox_path
from shared.models import ExportRequest, ExportResult
from shared.operations.archive import (
    MIME_TYPE,
    archive_message,
    check_archive_url,
    mime_chunks,
    mime_length,
    open_mime,
)
from shared.operations.context import OperationContext
from shared.operations.lookup import find_by_internet_message_id


def check_mailbox(ctx: OperationContext, mailbox: str) -> None:
    """Raise SenderNotAllowed unless the connection may act on `mailbox` (allowedSenders is the
    connection's mailbox scope, for reading as for sending)."""
    if not ctx.connection.sender_allowed(mailbox):
        raise SenderNotAllowed(
            f"Connection {ctx.connection.name!r} may not act on this mailbox.",
            details=[Detail("mailbox", "not on the connection's allowedSenders")],
        )


def export(request: ExportRequest, ctx: OperationContext) -> ExportResult | Download:
    """The message's .eml: a Download (sync), or PUT to `archiveUrl` (ExportResult).

    Raises SenderNotAllowed, ValidationFailed (archiveUrl; also a .eml over
    EXPORT_INLINE_MAX_BYTES without one), MessageNotFound, ArchiveFailed and Graph's mapped
    errors. The archive URL is checked before Graph is asked for anything.
    """
    check_mailbox(ctx, request.mailbox)
    if request.archive_url:
        check_archive_url(request.archive_url, ctx, "archiveUrl")
    message_id = request.message_id or find_by_internet_message_id(
        ctx, request.mailbox, request.internet_message_id or ""
    )
    if request.archive_url:
        stored = archive_message(
            ctx, request.mailbox, message_id, request.archive_url, "archiveUrl"
        )
        return ExportResult(
            operation_id=ctx.operation_id, status="archived", message_id=message_id, archive=stored
        )
    # The subject names the file; reading it first also answers 404 before any byte is sent.
    message = ctx.graph.get(
        f"{mailbox_path(request.mailbox)}/messages/{quote(message_id, safe='')}",
        params={"$select": "subject"},
    )
    resp = open_mime(ctx, request.mailbox, message_id)
    limit = ctx.settings.export_inline_max_bytes
    length = mime_length(resp)
    chunks = mime_chunks(resp)
    if length is None:
        # Graph did not say the size: read up to the limit (the answer is held whole anyway).
        held: list[bytes] = []
        size = 0
        for piece in chunks:
            held.append(piece)
            size += len(piece)
            if size > limit:
                resp.close()
                raise _too_large(f"more than {size}", limit)
        chunks, length = iter(held), size
    elif length > limit:
        resp.close()
        raise _too_large(str(length), limit)
    return Download(
        chunks=chunks,
        media_type=MIME_TYPE,
        filename=safe_filename(str((message or {}).get("subject") or ""), ".eml"),
        length=length,
        close=resp.close,
    )


def _too_large(size: str, limit: int) -> ValidationFailed:
    return ValidationFailed(
        f"The mail's .eml is {size} bytes, more than an export answers in its HTTP response "
        f"({limit} bytes, EXPORT_INLINE_MAX_BYTES): give archiveUrl to have it PUT there, "
        "streamed.",
        details=[Detail("archiveUrl", f"required for a mail over {limit} bytes")],
    )
