"""A draft a person made (`draftId` / `draftInternetMessageId`): find it in the sending
mailbox, apply the request's changes, add its attachments once, and hand it back to be sent
(send) or answered with (draft).

The draft is the person's, so nothing here deletes it. Its attachments are added exactly once
across attempts: before adding any, the ids the draft already had are recorded (progress
step `draftAttachmentsBefore`); an attempt that finds others besides those removes them (an
earlier attempt's partial work) and adds the request's again; `draftPreparedAt` says all of
it is done.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from shared.errors import AccessDenied, AppError, DraftAlreadySent
from shared.graph.client import mailbox_path
from shared.models import DraftRequest, SendRequest
from shared.operations.compose import (
    add_attachments,
    patch_message,
    prepare_attachments,
    sender_denied,
)
from shared.operations.context import OperationContext
from shared.operations.lookup import read_message
from shared.timestamps import iso, now_utc

log = logging.getLogger(__name__)

ATTACHMENTS_BEFORE = "draftAttachmentsBefore"
PREPARED = "draftPreparedAt"


def _attachment_ids(ctx: OperationContext, path: str) -> list[str]:
    return [a["id"] for a in ctx.graph.pages(f"{path}/attachments", params={"$select": "id"})]


def _remove(ctx: OperationContext, path: str, ids: list[str]) -> None:
    for att_id in ids:
        try:
            ctx.graph.request("DELETE", f"{path}/attachments/{quote(att_id, safe='')}")
        except AppError as exc:
            log.warning("could not remove attachment of operation %s: %s", ctx.operation_id, exc)


def existing_draft(
    request: SendRequest | DraftRequest, ctx: OperationContext, mailbox: str
) -> dict:
    """The request's draft in `mailbox`, changed as the request says; returns Graph's message.

    Raises MessageNotFound (404: no such draft in this mailbox, also an id of another
    mailbox's draft), DraftAlreadySent (409: it is no longer a draft), ValidationFailed
    (malformed id), SendAsDenied / Graph's mapped errors.
    """
    found = read_message(
        ctx,
        mailbox,
        request.draft_id,
        request.draft_internet_message_id,
        fields=("draftId", "draftInternetMessageId"),
    )
    if not found.get("isDraft", True):
        raise DraftAlreadySent(
            "This message is no longer a draft: it was sent already, and is not sent again."
        )
    if ctx.progress.get(PREPARED):
        return found
    sizes, items = prepare_attachments(request, ctx)
    path = f"{mailbox_path(mailbox)}/messages/{quote(found['id'], safe='')}"
    try:
        changed = ctx.graph.request(
            "PATCH", path, json=patch_message(request, ctx.operation_id, mailbox), idempotent=True
        ).data
    except AccessDenied as exc:
        raise sender_denied(exc, ctx) from exc
    message = {**found, **(changed or {})}
    if not request.attachments:
        return message
    current = _attachment_ids(ctx, path)
    before = ctx.progress.get(ATTACHMENTS_BEFORE)
    if before is None:
        before = current
        ctx.progress.record(ATTACHMENTS_BEFORE, before)
    else:
        _remove(ctx, path, [a for a in current if a not in before])
    try:
        indexes = list(range(len(request.attachments)))
        add_attachments(request, ctx, mailbox, found["id"], indexes, sizes, items)
    except BaseException:
        # The person's draft goes back to what it was; a retry adds them again.
        try:
            _remove(ctx, path, [a for a in _attachment_ids(ctx, path) if a not in before])
        except AppError:  # the original error matters more; the resume removes them too
            log.warning("could not tidy the draft of operation %s", ctx.operation_id)
        raise
    ctx.progress.record(PREPARED, iso(now_utc()))
    return message
