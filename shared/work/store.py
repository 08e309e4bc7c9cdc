"""What the lifecycle needs from storage: the `OperationStore` protocol and its errors.

Three kinds of entry: operations (by id), idempotency keys (per connection and key) and the
parked-work index (per connection, with the user). Every update is conditional on the version
the caller read (`etag`), so two workers that race on one operation cannot both win
(`StoreConflict`). shared.work.table_store implements it on Azure Table Storage; the tests'
in-memory fake passes the same contract tests (tests/contract/test_operation_store.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shared.errors import StorageUnavailable
from shared.work.record import Operation


class StoreConflict(Exception):
    """Someone else changed or created the entry first (ETag mismatch or existing key)."""


class StoreUnavailable(StorageUnavailable):
    """Storage could not be reached or refused the request (503 to callers)."""


@dataclass(frozen=True)
class KeyClaim:
    """The operation an idempotency key stands for, and whether this claim created it."""

    operation_id: str
    payload_hash: str
    new: bool


@dataclass(frozen=True)
class ParkedEntry:
    """One parked-work index entry: its partition (a connection's hash) and operation id."""

    partition: str
    operation_id: str


class OperationStore(Protocol):
    """Operations, idempotency keys and the parked-work index. Every method raises
    StoreUnavailable when storage fails."""

    def create(self, op: Operation) -> Operation:
        """Insert a new operation (sets createdAt/updatedAt/etag); StoreConflict if it exists."""
        ...

    def get(self, operation_id: str) -> Operation | None: ...

    def save(self, op: Operation) -> Operation:
        """Replace `op` if nobody changed it since it was read (its etag); StoreConflict if
        somebody did, or it is gone. Sets updatedAt and the new etag."""
        ...

    def delete(self, operation_id: str) -> None:
        """Remove an operation record (missing: nothing to do)."""
        ...

    def forget(self, op: Operation) -> None:
        """Remove a just-accepted operation and its idempotency key (its message never got
        queued), so the caller's retry starts afresh."""
        ...

    def claim_key(self, key_hash: str, operation_id: str, payload_hash: str) -> KeyClaim:
        """Map the key to the operation unless it maps to one already (exactly one wins)."""
        ...

    def index_parked(self, op: Operation) -> None: ...

    def unindex_parked(self, connection: str, operation_id: str) -> None: ...

    def parked_ids(self, connection: str, user: str | None = None) -> list[str]:
        """Operation ids parked under `connection` (and `user`, case-insensitive, when given)."""
        ...

    def all_parked(self) -> list[ParkedEntry]: ...

    def drop_parked(self, entry: ParkedEntry) -> None: ...

    def stale(self, updated_before: datetime) -> list[Operation]:
        """`accepted`/`running` operations untouched since `updated_before` (for recovery)."""
        ...

    def purge(self, retention_days: int, *, now: datetime | None = None) -> int:
        """Delete finished operations (and idempotency keys) older than the retention."""
        ...
