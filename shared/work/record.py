"""The operation record: the public status plus what only the app keeps (one msgspec Struct).

Stored as one Table entity per operation (shared.work.table_store) and answered, without the
private part, by GET /api/operations/{id} and the signed callback.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from shared.models import OperationError, OperationStatus
from shared.timestamps import iso, now_utc, parse_iso
from shared.work.states import TERMINAL, Status, error_info


class Operation(OperationStatus):
    """One accepted operation: its public status and the app's private bookkeeping."""

    # `user` mode: whose sign-in acts (parked work is indexed under it).
    user: str | None = None
    # The end of the current attempt's claim; only that attempt writes the record until then.
    claimed_until: str | None = None
    callback_url: str | None = None
    idempotency_key: str | None = None
    payload_hash: str | None = None
    # What earlier attempts recorded, step by step (shared.operations.context.Progress), saved
    # while holding the claim: a resumed attempt starts from the step that did not finish.
    progress: dict[str, Any] = msgspec.field(default_factory=dict)
    # The queue envelope (JSON), kept while the operation is not finished so parked or
    # stranded work can be queued again; dropped at the end so no mail content is kept.
    envelope: bytes | None = None
    # The store's concurrency token of the version this copy was read as (never stored).
    etag: str | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def public(self) -> dict[str, Any]:
        """The GET /api/operations/{id} answer (camelCase; nothing private)."""
        return msgspec.to_builtins(msgspec.convert(self, OperationStatus, from_attributes=True))


def new_operation(
    operation_id: str, kind: str, connection: str, status: Status = Status.ACCEPTED, **fields: Any
) -> Operation:
    """A fresh record (no attempts yet)."""
    return Operation(operation_id, kind, connection, status, 0, **fields)


def digest(*parts: str) -> str:
    """A key-safe hash of `parts` (Table keys may not hold / \\ # ? and control characters)."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def key_hash(connection: str, kind: str, key: str) -> str:
    """The idempotency key's row key: per connection and operation kind (a draft's key never
    answers for a send)."""
    return digest(connection.casefold(), kind, key)


__all__ = [
    "Operation",
    "digest",
    "error_record",
    "iso",
    "key_hash",
    "new_operation",
    "now_utc",
    "parse_iso",
]


def error_record(exc: BaseException) -> OperationError:
    """The `error` recorded on the operation (code, message, Graph's ids; never a trace)."""
    return msgspec.convert(error_info(exc), OperationError)
