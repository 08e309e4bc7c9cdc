"""Parked work: operations waiting for a sign-in, re-queued by a sign-in, expired in time.

`reauth_required` parks an operation (shared.work.lifecycle) with the sign-in URL or the admin
command, until PARKED_TTL_HOURS (default 72) have passed. A successful sign-in for its
connection (and user) calls `requeue_parked` (wired in shared.runtime; the admin command line
calls it itself), which queues the work again; the cleanup timer calls `expire_parked`, which
ends the rest as `failed` with `reauth_expired`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from shared.errors import StorageUnavailable
from shared.models import OperationError
from shared.timestamps import iso, now_utc, parse_iso
from shared.work.lifecycle import WorkQueues
from shared.work.record import Operation
from shared.work.states import Status, check_transition
from shared.work.store import OperationStore, StoreConflict

log = logging.getLogger(__name__)

REAUTH_EXPIRED = "reauth_expired"


def requeue_parked(
    store: OperationStore, queues: WorkQueues, connection: str, user: str | None
) -> list[str]:
    """Queue again every operation parked for `connection` (and `user`; None = all of them).

    Returns the operation ids queued. An operation changed meanwhile is left as it is.
    """
    queued: list[str] = []
    for operation_id in store.parked_ids(connection, user):
        op = store.get(operation_id)
        if op is None or op.status != Status.PARKED or op.envelope is None:
            store.unindex_parked(connection, operation_id)
            continue
        parked = (op.sign_in_url, op.admin_command, op.parked_until)
        check_transition(op.status, Status.ACCEPTED)
        op.status = Status.ACCEPTED
        op.sign_in_url = op.admin_command = op.parked_until = None
        try:
            store.save(op)
        except StoreConflict:
            continue
        try:
            queues.enqueue(op.kind, op.envelope)
        except StorageUnavailable:
            # Back to parked (the index entry is still there): the next sign-in tries again.
            op.status = Status.PARKED
            op.sign_in_url, op.admin_command, op.parked_until = parked
            with contextlib.suppress(StoreConflict):
                store.save(op)
            log.warning("could not re-queue parked operation %s; left parked", operation_id)
            continue
        store.unindex_parked(connection, operation_id)
        queued.append(operation_id)
    if queued:
        log.info("re-queued %d parked operation(s) of connection %s", len(queued), connection)
    return queued


def expire_parked(
    store: OperationStore,
    *,
    now: datetime | None = None,
    on_final: Callable[[Operation], None] | None = None,
) -> list[str]:
    """End parked operations whose time ran out as `failed` (`reauth_expired`)."""
    current = now or now_utc()
    expired: list[str] = []
    for entry in store.all_parked():
        op = store.get(entry.operation_id)
        if op is None or op.status != Status.PARKED:
            store.drop_parked(entry)
            continue
        until = parse_iso(op.parked_until)
        if until is None or until > current:
            continue
        check_transition(op.status, Status.FAILED)
        op.status = Status.FAILED
        op.finished_at = iso(current)
        op.envelope = None
        op.error = OperationError(
            code=REAUTH_EXPIRED,
            message="Nobody signed in again before the parked operation expired.",
        )
        try:
            store.save(op)
        except StoreConflict:
            continue
        store.drop_parked(entry)
        expired.append(op.operation_id)
        if on_final and op.callback_url:
            on_final(op)
    return expired
