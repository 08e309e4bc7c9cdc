"""The draft operation: create a message with its attachments in the sending mailbox's Drafts,
or update a draft a person made (`draftId`)."""

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
from shared.operations.reviewed import existing_draft


def draft(request: DraftRequest, ctx: OperationContext) -> DraftResult:
    """Create (or with `draftId` update) the draft; returns its id, webLink and conversationId.

    Raises SenderNotAllowed, ValidationFailed (attachment URLs), MessageNotFound /
    DraftAlreadySent (draftId) and Graph's mapped errors.
    """
    mailbox = check_sender(request, ctx)
    check_attachment_urls(request, ctx)
    if request.draft_id is not None or request.draft_internet_message_id is not None:
        message = existing_draft(request, ctx, mailbox)
        status = "updated"
    else:
        if ctx.progress.resume:
            # An earlier attempt's draft may be half-built (attachments are added after the
            # create), so it is removed and the draft made again: a draft is never sent by us.
            for found in find_by_operation_id(ctx, mailbox):
                if found.get("isDraft", True):
                    delete_quietly(ctx, mailbox, found["id"])
        message = create_draft(request, ctx)
        status = "created"
    if not message.get("webLink"):
        # Graph normally returns it on create; read it back rather than answer without it.
        message = ctx.graph.get(
            f"{mailbox_path(mailbox)}/messages/{quote(message['id'], safe='')}",
            params={"$select": "id,webLink,conversationId"},
        )
    return DraftResult(
        operation_id=ctx.operation_id,
        status=status,
        message_id=message["id"],
        web_link=message.get("webLink"),
        conversation_id=message.get("conversationId"),
    )
