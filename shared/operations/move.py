"""The move operation: find the message, resolve the destination folder, move or copy it, and
mark it (read, categories, flag); optionally archive its .eml first."""

from __future__ import annotations

from urllib.parse import quote

import msgspec

from shared.errors import (
    Detail,
    GraphOutcomeUnknown,
    MessageNotFound,
    SenderNotAllowed,
    ValidationFailed,
)
from shared.graph.folders import Destination, parse_destination, resolve
from shared.models import ArchiveResult, MoveRequest, MoveResult
from shared.operations.archive import archive_message, check_archive_url
from shared.operations.compose import mailbox_path
from shared.operations.context import OperationContext
from shared.operations.lookup import MALFORMED_ID, find_by_internet_message_id
from shared.operations.marking import mark
from shared.timestamps import iso, now_utc

# Progress steps (recorded on the operation while it runs; shared.operations.context.Progress).
COPY_ISSUED = "copyIssuedAt"  # before POST /copy: a resumed attempt looks for the copy first
ARCHIVED = "archived"  # the .eml was PUT: its size and SHA-256


def move(request: MoveRequest, ctx: OperationContext) -> MoveResult:
    """Move (or copy) one message, archive and mark it; returns the resulting message's id.

    The archive URL is checked before anything acts, and the .eml is PUT before the message
    moves, so a refused archive leaves the message where it was. Immutable ids keep a moved
    message's id, so a repeated move is harmless; a copy records `copyIssuedAt` first, and a
    resumed attempt looks for the copy before copying again.
    Raises SenderNotAllowed (mailbox outside the connection's allowedSenders), MessageNotFound,
    FolderNotFound, ValidationFailed, ArchiveFailed and Graph's mapped errors.
    """
    if not ctx.connection.sender_allowed(request.mailbox):
        # The allowlist is the connection's mailbox scope, for moving as for sending.
        raise SenderNotAllowed(
            f"Connection {ctx.connection.name!r} may not act on this mailbox.",
            details=[Detail("mailbox", "not on the connection's allowedSenders")],
        )
    if request.archive is not None:
        check_archive_url(request.archive.url, ctx, "archive.url")
    destination = parse_destination(request.destination)
    message_id = request.message_id or find_by_internet_message_id(
        ctx, request.mailbox, request.internet_message_id or ""
    )
    archived = None
    if request.archive is not None:
        archived = _archive_once(ctx, request.mailbox, message_id, request.archive.url)
    moved_id, folder_id = _relocate(request, ctx, destination, message_id)
    mark(
        ctx,
        request.mailbox,
        moved_id,
        mark_as_read=request.mark_as_read,
        categories=request.categories,
        replace_categories=request.replace_categories,
        flag=request.flag,
    )
    return MoveResult(
        operation_id=ctx.operation_id,
        status="copied" if request.copy else "moved",
        message_id=moved_id,
        destination_folder_id=folder_id,
        archive=archived,
    )


def _archive_once(ctx: OperationContext, mailbox: str, message_id: str, url: str) -> ArchiveResult:
    """PUT the .eml unless an earlier attempt recorded it (a PUT is idempotent anyway)."""
    done = ctx.progress.get(ARCHIVED)
    if done:
        return msgspec.convert(done, ArchiveResult)
    stored = archive_message(ctx, mailbox, message_id, url, "archive.url")
    ctx.progress.record(ARCHIVED, msgspec.to_builtins(stored))
    return stored


def _relocate(
    request: MoveRequest, ctx: OperationContext, destination: Destination, message_id: str
) -> tuple[str, str]:
    """Move or copy to the resolved folder: (resulting id, folder id). A cached folder that
    vanished is resolved once more."""
    key = (ctx.connection.name, request.mailbox.casefold(), destination.key)
    from_cache = ctx.folders.get(key) is not None
    for attempt in (1, 2):
        folder_id = resolve(
            ctx.graph,
            request.mailbox,
            destination,
            create_missing=request.create_missing_folders,
            cache=ctx.folders,
            connection=ctx.connection.name,
        )
        try:
            if request.copy:
                return _copy_once(ctx, request.mailbox, message_id, folder_id), folder_id
            moved = ctx.graph.post(
                f"{mailbox_path(request.mailbox)}/messages/{quote(message_id, safe='')}/move",
                json={"destinationId": folder_id},
            )
            return moved["id"], moved.get("parentFolderId") or folder_id
        except ValidationFailed as exc:
            if exc.graph is None or exc.graph.code != MALFORMED_ID:
                raise
            raise ValidationFailed(
                "messageId is not a message id of Microsoft Graph.",
                details=[Detail("messageId", "Graph says the id is malformed")],
                graph=exc.graph,
            ) from exc
        except MessageNotFound:
            # A cached folder may have been deleted since: forget it and resolve once more.
            if attempt == 2 or not from_cache:
                raise
            ctx.folders.forget(key)
            from_cache = False
    raise AssertionError("unreachable")


def _copy_once(ctx: OperationContext, mailbox: str, message_id: str, folder_id: str) -> str:
    """POST /copy at most once per operation: a resumed attempt first looks for the copy."""
    if ctx.progress.get(COPY_ISSUED):
        found = _find_copy(ctx, mailbox, message_id, folder_id)
        if found:
            return found
    ctx.progress.record(COPY_ISSUED, iso(now_utc()))
    path = f"{mailbox_path(mailbox)}/messages/{quote(message_id, safe='')}/copy"
    try:
        copied = ctx.graph.post(path, json={"destinationId": folder_id})
    except GraphOutcomeUnknown:
        found = _find_copy(ctx, mailbox, message_id, folder_id)
        if found:
            return found
        raise
    return copied["id"]


def _find_copy(ctx: OperationContext, mailbox: str, message_id: str, folder_id: str) -> str | None:
    """A copy of the message in the folder: same internetMessageId, another id (the newest)."""
    base = mailbox_path(mailbox)
    original = ctx.graph.get(
        f"{base}/messages/{quote(message_id, safe='')}", params={"$select": "internetMessageId"}
    )
    imid = (original or {}).get("internetMessageId")
    if not imid:
        return None
    literal = str(imid).replace("'", "''")
    data = ctx.graph.get(
        f"{base}/mailFolders/{quote(folder_id, safe='')}/messages",
        params={
            "$filter": f"internetMessageId eq '{literal}'",
            "$select": "id,createdDateTime",
            "$top": "10",
        },
    )
    copies = [m for m in (data or {}).get("value", []) if m.get("id") != message_id]
    if not copies:
        return None
    return max(copies, key=lambda m: m.get("createdDateTime") or "")["id"]
