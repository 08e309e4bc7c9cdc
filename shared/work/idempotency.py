"""Idempotent acceptance: one operation per (connection, kind, idempotency key), decided by the
store.

The key is the `Idempotency-Key` header, else the body's `idempotencyKey`, else the operation id.
The same key with the same payload returns the first operation (and never runs it again); with
a different payload the caller gets 409 `idempotency_conflict`. Concurrent duplicates race on a
conditional insert in the store: exactly one wins.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import msgspec

from shared.errors import IdempotencyConflict
from shared.timestamps import now_utc, parse_iso
from shared.work.record import Operation, digest, key_hash, new_operation
from shared.work.states import Status
from shared.work.store import OperationStore

log = logging.getLogger(__name__)

# Fields that say how to run the request, not what it is: they do not change its identity.
_NOT_PAYLOAD = frozenset({"idempotencyKey", "mode", "callbackUrl"})
# An accepted operation that never got a first attempt this long after its last update most
# likely lost its queue message (a crash between accept and enqueue): a duplicate re-queues it.
STALE_ACCEPTED = timedelta(seconds=60)


def payload_hash(request_json: dict[str, Any]) -> str:
    """A stable hash of the request's content (canonical JSON, sorted keys)."""
    content = {k: v for k, v in request_json.items() if k not in _NOT_PAYLOAD}
    return digest(msgspec.json.encode(content, order="sorted").decode("utf-8"))


@dataclass
class Accepted:
    """The outcome of `accept`: the operation that stands for the request, and whether it is new."""

    operation: Operation
    new: bool
    # True when the caller should (re-)enqueue: a new operation, or a stale accepted one.
    enqueue: bool


def accept(
    store: OperationStore,
    *,
    kind: str,
    operation_id: str,
    request_json: dict[str, Any],
    envelope: bytes,
    key: str | None,
    user: str | None = None,
    callback_url: str | None = None,
) -> Accepted:
    """Record the operation unless its key names an earlier one; raises IdempotencyConflict,
    StoreConflict (the operation id exists) and StorageUnavailable.

    The operation is written before its key is claimed, so the key never names a missing
    operation; a loser removes its own record again.
    """
    connection = str(request_json.get("connection", ""))
    phash = payload_hash(request_json)
    op = new_operation(
        operation_id,
        kind,
        connection,
        user=user,
        callback_url=callback_url,
        idempotency_key=(key or operation_id)[:200],
        payload_hash=phash,
        envelope=envelope,
    )
    store.create(op)
    claim = store.claim_key(key_hash(connection, kind, key or operation_id), operation_id, phash)
    if claim.new:
        return Accepted(op, new=True, enqueue=True)
    _discard(store, operation_id)
    if claim.payload_hash != phash:
        raise IdempotencyConflict(
            "This idempotency key was used before with a different request; use a new key "
            "for a new request.",
        )
    first = store.get(claim.operation_id)
    if first is None:  # removed after the retention period: the key is free in all but name
        raise IdempotencyConflict(
            "This idempotency key belongs to an operation that no longer exists; use a new key."
        )
    updated = parse_iso(first.updated_at)
    stale = (
        first.status == Status.ACCEPTED
        and first.attempts == 0
        and updated is not None
        and now_utc() - updated > STALE_ACCEPTED
    )
    return Accepted(first, new=False, enqueue=stale)


def _discard(store: OperationStore, operation_id: str) -> None:
    try:
        store.delete(operation_id)
    except Exception as exc:  # a leftover duplicate record is harmless: nothing queues it
        log.warning("could not remove duplicate operation %s: %s", operation_id, exc)
