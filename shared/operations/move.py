"""The move operation: find the message, resolve the destination folder, move it."""

from __future__ import annotations

from urllib.parse import quote

from shared.errors import Detail, MessageNotFound, SenderNotAllowed, ValidationFailed
from shared.graph.folders import parse_destination, resolve
from shared.models import MoveRequest, MoveResult
from shared.operations.compose import mailbox_path
from shared.operations.context import OperationContext
from shared.operations.lookup import MALFORMED_ID, find_by_internet_message_id


def move(request: MoveRequest, ctx: OperationContext) -> MoveResult:
    """Move one message; returns its new id (immutable ids keep it equal where Graph can).

    Raises SenderNotAllowed (mailbox outside the connection's allowedSenders), MessageNotFound,
    FolderNotFound, ValidationFailed and Graph's mapped errors.
    """
    if not ctx.connection.sender_allowed(request.mailbox):
        # The allowlist is the connection's mailbox scope, for moving as for sending.
        raise SenderNotAllowed(
            f"Connection {ctx.connection.name!r} may not act on this mailbox.",
            details=[Detail("mailbox", "not on the connection's allowedSenders")],
        )
    destination = parse_destination(request.destination)
    message_id = request.message_id or find_by_internet_message_id(
        ctx, request.mailbox, request.internet_message_id or ""
    )
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
            moved = ctx.graph.post(
                f"{mailbox_path(request.mailbox)}/messages/{quote(message_id, safe='')}/move",
                json={"destinationId": folder_id},
            )
            break
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
    return MoveResult(
        operation_id=ctx.operation_id,
        status="moved",
        message_id=moved["id"],
        destination_folder_id=moved.get("parentFolderId") or folder_id,
    )
