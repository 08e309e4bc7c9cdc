"""The draft operation: create a message with its attachments in `from`'s Drafts."""

from __future__ import annotations

from urllib.parse import quote

from shared.models import DraftRequest, DraftResult
from shared.operations.compose import (
    check_attachment_urls,
    check_sender,
    create_draft,
    delete_quietly,
    find_by_operation_id,
    mailbox_path,
)
from shared.operations.context import OperationContext


def draft(request: DraftRequest, ctx: OperationContext) -> DraftResult:
    """Create the draft; returns its id, webLink and conversationId.

    Raises SenderNotAllowed, ValidationFailed (attachment URLs) and Graph's mapped errors.
    """
    sender = check_sender(request, ctx)
    check_attachment_urls(request, ctx)
    if ctx.progress.resume:
        # An earlier attempt's draft may be half-built (attachments are added after the
        # create), so it is removed and the draft made again: a draft is never sent by us.
        for found in find_by_operation_id(ctx, sender):
            if found.get("isDraft", True):
                delete_quietly(ctx, sender, found["id"])
    message = create_draft(request, ctx)
    if not message.get("webLink"):
        # Graph normally returns it on create; read it back rather than answer without it.
        message = ctx.graph.get(
            f"{mailbox_path(sender)}/messages/{quote(message['id'], safe='')}",
            params={"$select": "id,webLink,conversationId"},
        )
    return DraftResult(
        operation_id=ctx.operation_id,
        status="created",
        message_id=message["id"],
        web_link=message.get("webLink"),
        conversation_id=message.get("conversationId"),
    )
