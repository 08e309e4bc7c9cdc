"""Stranded work: operations left `accepted` or `running` with no queue message behind them.

A host that dies during an operation's last attempt leaves it `running` with an expired claim;
an accept that crashed between the record and the enqueue leaves it `accepted` (N13). The daily
cleanup calls `recover_stale`, which queues each such operation again: the next attempt runs in
resume mode (attempts > 0), so nothing is sent twice. One whose envelope is gone (it cannot be
queued again) ends `failed` with `abandoned`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from shared.models import OperationError
from shared.timestamps import iso, now_utc, parse_iso
from shared.work.lifecycle import WorkQueues
from shared.work.record import Operation
from shared.work.states import Status, check_transition
from shared.work.store import OperationStore, StoreConflict

log = logging.getLogger(__name__)

ABANDONED = "abandoned"
# Untouched this long (and past its claim / next attempt) means no message will come for it.
# Generous: a queued message is retried within minutes; a re-scheduled one sets nextAttemptAt.
STALE_AFTER = timedelta(hours=1)


def is_stranded(op: Operation, now: datetime, stale_after: timedelta = STALE_AFTER) -> bool:
    """True for an `accepted`/`running` operation nobody will pick up again (pure)."""
    if op.status not in (Status.ACCEPTED, Status.RUNNING):
        return False
    cutoff = now - stale_after
    updated = parse_iso(op.updated_at)
    if updated is None or updated > cutoff:
        return False
    if op.status == Status.RUNNING:
        held = parse_iso(op.claimed_until)
        return held is None or held < cutoff
    due = parse_iso(op.next_attempt_at)
    return due is None or due < cutoff


def recover_stale(
    store: OperationStore,
    queues: WorkQueues,
    *,
    now: datetime | None = None,
    on_final: Callable[[Operation], None] | None = None,
) -> list[str]:
    """Queue stranded operations again (or end them `abandoned`); returns their ids."""
    current = now or now_utc()
    recovered: list[str] = []
    for op in store.stale(current - STALE_AFTER):
        if not is_stranded(op, current):
            continue
        previous = op.status
        if op.envelope is None:
            check_transition(op.status, Status.FAILED)
            op.status = Status.FAILED
            op.finished_at = iso(current)
            op.error = OperationError(
                code=ABANDONED,
                message="The operation stopped without a result and cannot be queued again.",
            )
        else:
            check_transition(op.status, Status.ACCEPTED)
            op.status = Status.ACCEPTED
            op.claimed_until = op.next_attempt_at = None
        try:
            store.save(op)
        except StoreConflict:
            continue  # someone is working on it after all
        if op.status == Status.ACCEPTED and op.envelope is not None:
            queues.enqueue(op.kind, op.envelope)
        elif on_final and op.callback_url:
            on_final(op)
        log.warning(
            "operation %s was stranded (%s); %s",
            op.operation_id,
            previous,
            "queued again" if op.status == Status.ACCEPTED else "ended as abandoned",
        )
        recovered.append(op.operation_id)
    return recovered
