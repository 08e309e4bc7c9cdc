"""The export operation: a message's MIME as .eml, streamed in the answer or PUT to an archive."""

from __future__ import annotations

from urllib.parse import quote

from shared.downloads import Download, safe_filename
from shared.errors import Detail, SenderNotAllowed
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
    """The message's .eml: a Download streamed from Graph's `$value` (sync), or PUT to
    `archiveUrl` (ExportResult).

    Raises SenderNotAllowed, ValidationFailed (archiveUrl), MessageNotFound, ArchiveFailed and
    Graph's mapped errors, all before the first byte of the .eml. The archive URL is checked
    before Graph is asked for anything.
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
    return Download(
        chunks=mime_chunks(resp),
        media_type=MIME_TYPE,
        filename=safe_filename(str((message or {}).get("subject") or ""), ".eml"),
        # Graph's Content-Length when it gave one; without it the answer is sent chunked.
        length=mime_length(resp),
        close=resp.close,
    )
