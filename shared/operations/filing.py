"""After a mail is sent: file its Sent Items copy (`fileTo`) and archive it (`archive`).

The steps any sending operation (send, and reply/forward) runs once `/send` was accepted. Each
is recorded in the operation's progress when done (`filed`, `archived`), so a resumed attempt
continues at the first step that did not finish; repeating a step is harmless anyway (a move of
an immutable id that is already there is skipped, marks set values, a PUT replaces).

Exchange files the Sent Items copy only once the mail has left the Outbox: a moment normally,
minutes when the mailbox is over its sending rate. Until the copy is there the attempt ends
with `Pending` (Retry-After growing with the wait, 2 s to 30 s): the lifecycle re-schedules it as
a new queue message, so no worker and no Graph slot waits meanwhile. After
SEND_CONFIRM_SECONDS without a copy the operation ends `sent_copy_missing` (the mail was sent;
nothing is sent again).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import quote

import msgspec

from shared.errors import MessageNotFound, Pending, SentCopyMissing
from shared.graph.client import mailbox_path
from shared.graph.folders import parse_destination, resolve
from shared.models import Archive, ArchiveResult, FiledResult, FileTo
from shared.operations.archive import archive_message, check_archive_url
from shared.operations.compose import find_by_operation_id
from shared.operations.context import OperationContext
from shared.operations.exactly_once import SEND_ISSUED
from shared.operations.marking import mark
from shared.timestamps import iso, now_utc, parse_iso

# Progress steps.
SENT = "sent"  # {"messageId", "internetMessageId", "at"}: /send was accepted at `at`
FILED = "filed"  # FiledResult: the copy is in the fileTo folder, marked
ARCHIVED = "archived"  # ArchiveResult: its .eml was PUT
T = TypeVar("T")
FIRST_WAIT_SECONDS = 2.0
MAX_WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class Sent:
    """A sent mail as the operation answers it: the filed copy's id when it was filed."""

    message_id: str | None
    internet_message_id: str | None
    conversation_id: str | None = None
    filed: FiledResult | None = None
    archive: ArchiveResult | None = None


def send_and_file(
    ctx: OperationContext,
    mailbox: str,
    send: Callable[[], dict],
    file_to: FileTo | None,
    archive: Archive | None,
) -> Sent:
    """`send()` (an exactly-once send from `mailbox` returning the message), then file and
    archive its Sent Items copy, each step recorded in the operation's progress.

    Everything that can refuse the request is checked before the mail is sent: the archive URL
    and the fileTo folder (created now when asked). A resumed attempt that finds `sent`
    recorded goes straight to the filing; one that finds only `sendIssuedAt` resumes the send
    (never sends twice). Raises what `send` raises, and what after_send raises (Pending while
    Exchange files the copy).
    """
    if file_to is None and archive is None:
        message = send()
        return Sent(message["id"], message.get("internetMessageId"), message.get("conversationId"))
    if archive is not None:
        check_archive_url(archive.url, ctx, "archive.url")
    sent = ctx.progress.get(SENT)
    if sent is None:
        if file_to is not None:
            destination_folder(ctx, mailbox, file_to)
        message = send()
        sent = {
            "messageId": message["id"],
            "internetMessageId": message.get("internetMessageId"),
            "conversationId": message.get("conversationId"),
            "at": ctx.progress.get(SEND_ISSUED) or iso(now_utc()),
        }
        ctx.progress.record(SENT, sent)
    filed, archived = after_send(ctx, mailbox, sent, file_to, archive)
    return Sent(
        message_id=filed.message_id if filed else sent.get("messageId"),
        internet_message_id=sent.get("internetMessageId"),
        conversation_id=sent.get("conversationId"),
        filed=filed,
        archive=archived,
    )


def wait_seconds(waited: float) -> float:
    """How long to wait before looking for the copy again, after `waited` seconds (pure):
    half the time waited so far, between 2 and 30 seconds."""
    return min(MAX_WAIT_SECONDS, max(FIRST_WAIT_SECONDS, waited / 2))


def folder_key(ctx: OperationContext, mailbox: str, file_to: FileTo) -> tuple[str, str, str]:
    """The fileTo folder's key in the operation's folder cache."""
    return (ctx.connection.name, mailbox.casefold(), parse_destination(file_to.destination).key)


def destination_folder(ctx: OperationContext, mailbox: str, file_to: FileTo) -> str:
    """The fileTo folder's id, created if asked; raises FolderNotFound. Called before the send
    too, so a missing folder refuses the request before anything is sent."""
    return resolve(
        ctx.graph,
        mailbox,
        parse_destination(file_to.destination),
        create_missing=file_to.create_missing_folders,
        cache=ctx.folders,
        connection=ctx.connection.name,
    )


def after_send(
    ctx: OperationContext,
    mailbox: str,
    sent: dict,
    file_to: FileTo | None,
    archive: Archive | None,
) -> tuple[FiledResult | None, ArchiveResult | None]:
    """File and archive the sent mail `sent` (its SENT record) of `mailbox`.

    Raises Pending (the copy is not there yet: re-schedule), SentCopyMissing (it never came),
    FolderNotFound, ValidationFailed / ArchiveFailed (the archive URL) and Graph's errors.
    """
    filed = _recorded(ctx, FILED, FiledResult)
    if file_to is not None and filed is None:
        copy = sent_copy(ctx, mailbox, sent, file_to.destination)
        folder_id = destination_folder(ctx, mailbox, file_to)
        message_id = copy["id"]
        if copy.get("parentFolderId") != folder_id:
            try:
                moved = ctx.graph.post(
                    f"{mailbox_path(mailbox)}/messages/{quote(message_id, safe='')}/move",
                    json={"destinationId": folder_id},
                )
            except MessageNotFound:
                # The copy moved on since we found it (Exchange filing it, a person moving
                # it), or a cached folder was deleted: look again, from scratch.
                ctx.folders.forget(folder_key(ctx, mailbox, file_to))
                raise Pending(
                    "The Sent Items copy moved while it was being filed; looking again.",
                    retry_after=FIRST_WAIT_SECONDS,
                ) from None
            message_id = moved["id"]
        mark(
            ctx,
            mailbox,
            message_id,
            mark_as_read=file_to.mark_as_read,
            categories=file_to.categories,
        )
        filed = FiledResult(message_id=message_id, destination_folder_id=folder_id)
        ctx.progress.record(FILED, msgspec.to_builtins(filed))
    archived = _recorded(ctx, ARCHIVED, ArchiveResult)
    if archive is not None and archived is None:
        target = filed.message_id if filed else sent_copy(ctx, mailbox, sent, None)["id"]
        archived = archive_message(ctx, mailbox, target, archive.url, "archive.url")
        ctx.progress.record(ARCHIVED, msgspec.to_builtins(archived))
    return filed, archived


def sent_copy(ctx: OperationContext, mailbox: str, sent: dict, destination: str | None) -> dict:
    """The sent mail's copy in `mailbox` (any folder but the Outbox), found by the operation id
    it carries; raises Pending while Exchange has not filed it, SentCopyMissing after
    SEND_CONFIRM_SECONDS."""
    found = [m for m in find_by_operation_id(ctx, mailbox) if not m.get("isDraft", True)]
    if found:
        # By the folder each was listed in: a second listing of the Outbox could already miss
        # a message that left it meanwhile under another id (its Sent Items copy).
        outbox = ctx.graph.get(
            f"{mailbox_path(mailbox)}/mailFolders/outbox", params={"$select": "id"}
        )["id"]
        filed = [m for m in found if m.get("parentFolderId") != outbox]
        if filed:
            return filed[0]
    started = parse_iso(sent.get("at")) or now_utc()
    waited = (now_utc() - started).total_seconds()
    limit = ctx.settings.send_confirm_seconds
    where = f"filed to {destination}" if destination else "archived"
    if waited >= limit:
        raise SentCopyMissing(
            f"The mail was sent (internetMessageId {sent.get('internetMessageId')}), but its "
            f"Sent Items copy did not appear within {limit:.0f} s, so it was not {where}. "
            "Do not send it again: look for it in the sender's Outbox and Sent Items."
        )
    raise Pending(
        "The mail was sent; Exchange has not filed its Sent Items copy yet (it may wait in the "
        f"Outbox under the mailbox's sending rate). It is {where} once it is there.",
        retry_after=wait_seconds(waited),
    )


def _recorded(ctx: OperationContext, step: str, kind: type[T]) -> T | None:
    value = ctx.progress.get(step)
    return None if value is None else msgspec.convert(value, kind)
