"""Operation status in Azure Table Storage: accepted → running → succeeded | failed | parked.

One table (`operations`) holds three kinds of entity, told apart by their keys:

- the operation: PartitionKey = operation id, RowKey = "op" (spreads load over partitions);
- an idempotency key: PartitionKey = "idem-<sha256(connection, kind, key)>", RowKey = "key";
- a parked-work index entry: PartitionKey = "parked-<sha256(connection)>", RowKey = operation id.

Updates are conditional on the entity's ETag, so two workers that race on one operation cannot
both win (`StoreConflict`). Table Storage has no TTL: `purge` removes finished operations older
than the retention (OPERATION_RETENTION_DAYS, default 30), run daily by the cleanup timer.
azure-data-tables is imported lazily (cold start).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.errors import StorageUnavailable
from shared.settings import OPERATIONS_TABLE, Settings

ACCEPTED = "accepted"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
PARKED = "parked"
# A message that exhausted maxDequeueCount sits in `<queue>-poison`; an operator must act.
POISONED = "poisoned"
STATUSES = (ACCEPTED, RUNNING, SUCCEEDED, FAILED, PARKED, POISONED)
TERMINAL = frozenset({SUCCEEDED, FAILED, POISONED})
OP_ROW = "op"
KEY_ROW = "key"


class StoreConflict(Exception):
    """Someone else changed or created the entity first (ETag mismatch or existing key)."""


class StoreUnavailable(StorageUnavailable):
    """Table Storage could not be reached or refused the request (503 to callers)."""


def now_utc() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime | None) -> str | None:
    """A UTC timestamp as ISO 8601 with Z (sortable as text, used in filters)."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def digest(*parts: str) -> str:
    """A key-safe hash of `parts` (Table keys may not hold / \\ # ? and control characters)."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def key_hash(connection: str, kind: str, key: str) -> str:
    """The idempotency key's row key: per connection and operation kind (a draft's key never
    answers for a send)."""
    return digest(connection.casefold(), kind, key)


@dataclass
class Operation:
    """One accepted operation and everything a caller or an operator may ask about it."""

    operation_id: str
    kind: str  # send | move | draft
    connection: str
    status: str = ACCEPTED
    user: str | None = None
    attempts: int = 0
    created_at: str | None = None
    updated_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    claimed_until: str | None = None
    next_attempt_at: str | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    sign_in_url: str | None = None
    admin_command: str | None = None
    parked_until: str | None = None
    poison_queue: str | None = None
    callback_url: str | None = None
    # Set before `/send` is issued: a resume then waits for the Sent Items copy (never resends).
    send_issued_at: str | None = None
    callback: dict[str, Any] | None = None
    idempotency_key: str | None = None
    payload_hash: str | None = None
    # The queue envelope (JSON), kept while the operation is not finished so parked work can be
    # queued again; dropped at the end so the table keeps no mail content.
    envelope: bytes | None = None
    etag: str | None = field(default=None, repr=False)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def public(self) -> dict[str, Any]:
        """The GET /api/operations/{id} answer (camelCase; no envelope, no ETag)."""
        out: dict[str, Any] = {
            "operationId": self.operation_id,
            "operation": self.kind,
            "connection": self.connection,
            "status": self.status,
            "attempts": self.attempts,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "nextAttemptAt": self.next_attempt_at,
            "result": self.result,
            "error": self.error,
            "signInUrl": self.sign_in_url,
            "adminCommand": self.admin_command,
            "parkedUntil": self.parked_until,
            "poisonQueue": self.poison_queue,
            "callback": self.callback,
        }
        return {k: v for k, v in out.items() if v is not None}


_JSON_FIELDS = ("result", "error", "callback")
_TEXT_FIELDS = (
    "kind",
    "connection",
    "status",
    "user",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
    "claimed_until",
    "next_attempt_at",
    "sign_in_url",
    "admin_command",
    "parked_until",
    "poison_queue",
    "callback_url",
    "send_issued_at",
    "idempotency_key",
    "payload_hash",
)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def to_entity(op: Operation) -> dict[str, Any]:
    """The Table entity for `op` (None fields are left out; JSON fields as text)."""
    entity: dict[str, Any] = {"PartitionKey": op.operation_id, "RowKey": OP_ROW}
    entity["attempts"] = op.attempts
    for name in _TEXT_FIELDS:
        value = getattr(op, name)
        if value is not None:
            entity[_camel(name)] = value
    for name in _JSON_FIELDS:
        value = getattr(op, name)
        if value is not None:
            entity[name] = json.dumps(value, separators=(",", ":"))
    if op.envelope is not None:
        entity["envelope"] = op.envelope
    return entity


def from_entity(entity: Any) -> Operation:
    """An Operation from a Table entity (a TableEntity or a plain dict)."""
    op = Operation(
        operation_id=entity["PartitionKey"],
        kind=entity.get("kind", ""),
        connection=entity.get("connection", ""),
    )
    op.attempts = int(entity.get("attempts") or 0)
    for name in _TEXT_FIELDS:
        value = entity.get(_camel(name))
        if value is not None:
            setattr(op, name, value)
    for name in _JSON_FIELDS:
        raw = entity.get(name)
        if raw:
            setattr(op, name, json.loads(raw))
    envelope = entity.get("envelope")
    if envelope is not None:
        op.envelope = bytes(envelope.value if hasattr(envelope, "value") else envelope)
    metadata = getattr(entity, "metadata", None) or {}
    op.etag = metadata.get("etag")
    return op


def make_table_client(settings: Settings, table: str = OPERATIONS_TABLE) -> Any:
    """A TableClient for `table` (default: operations): connection string locally, identity in
    Azure."""
    from azure.data.tables import TableServiceClient

    if settings.storage_connection:
        service = TableServiceClient.from_connection_string(settings.storage_connection)
    elif settings.storage_table_service_uri:
        from shared.work.queueing import storage_credential

        service = TableServiceClient(
            endpoint=settings.storage_table_service_uri, credential=storage_credential()
        )
    else:
        raise StoreUnavailable(
            "No storage is configured: set AzureWebJobsStorage (a connection string) or "
            "AzureWebJobsStorage__tableServiceUri with a managed identity."
        )
    return service.get_table_client(table)


class OperationStore:
    """Operations, idempotency keys and the parked-work index in one Table."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self._ready = False
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def _unavailable(self) -> Iterator[None]:
        """Turn Azure errors of the block into StoreUnavailable (503 + Retry-After upstream)."""
        from azure.core.exceptions import AzureError

        try:
            yield
        except AzureError as exc:
            raise StoreUnavailable(f"Table Storage is unavailable: {type(exc).__name__}") from exc

    def ensure_table(self) -> None:
        """Create the table on first use (idempotent; `make run` and tests need no setup)."""
        if self._ready:
            return
        from azure.core.exceptions import ResourceExistsError

        with self._lock:
            if self._ready:
                return
            with self._unavailable(), contextlib.suppress(ResourceExistsError):
                self.table.create_table()
            self._ready = True

    # --- operations -------------------------------------------------------------------

    def create(self, op: Operation) -> Operation:
        """Insert a new operation; raises StoreConflict if the id exists."""
        from azure.core.exceptions import ResourceExistsError

        self.ensure_table()
        stamp = iso(now_utc())
        op.created_at = op.created_at or stamp
        op.updated_at = stamp
        try:
            with self._unavailable():
                meta = self.table.create_entity(to_entity(op))
        except StoreUnavailable as exc:
            if isinstance(exc.__cause__, ResourceExistsError):
                raise StoreConflict(f"operation {op.operation_id} exists") from exc.__cause__
            raise
        op.etag = (meta or {}).get("etag")
        return op

    def get(self, operation_id: str) -> Operation | None:
        from azure.core.exceptions import ResourceNotFoundError

        self.ensure_table()
        with self._unavailable():
            try:
                return from_entity(self.table.get_entity(operation_id, OP_ROW))
            except ResourceNotFoundError:
                return None

    def save(self, op: Operation) -> Operation:
        """Replace `op` if nobody changed it since it was read; raises StoreConflict otherwise."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        op.updated_at = iso(now_utc())
        try:
            with self._unavailable():
                meta = self.table.update_entity(
                    to_entity(op),
                    mode=UpdateMode.REPLACE,
                    etag=op.etag,
                    match_condition=MatchConditions.IfNotModified,
                )
        except StoreUnavailable as exc:
            cause = exc.__cause__
            if isinstance(cause, (ResourceModifiedError, ResourceNotFoundError)) or (
                getattr(cause, "status_code", None) == 412
            ):
                raise StoreConflict(f"operation {op.operation_id} changed meanwhile") from cause
            raise
        op.etag = (meta or {}).get("etag")
        return op

    def forget(self, op: Operation) -> None:
        """Remove a just-accepted operation and its idempotency key (its message never got
        queued), so the caller's retry starts afresh; raises StoreUnavailable."""
        from azure.core.exceptions import ResourceNotFoundError

        with self._unavailable():
            with contextlib.suppress(ResourceNotFoundError):
                key = self.table.get_entity(
                    f"idem-{key_hash(op.connection, op.kind, op.idempotency_key or '')}", KEY_ROW
                )
                if key.get("operationId") == op.operation_id:
                    self.table.delete_entity(key["PartitionKey"], KEY_ROW)
            with contextlib.suppress(ResourceNotFoundError):
                self.table.delete_entity(op.operation_id, OP_ROW)

    # --- idempotency keys --------------------------------------------------------------

    def claim_key(self, key_hash: str, operation_id: str, payload_hash: str) -> dict[str, Any]:
        """Insert the key → operation mapping; if it exists, return the first one instead.

        The insert is conditional (Table Storage refuses a second entity with the same keys),
        so concurrent duplicates race safely: exactly one insert wins.
        """
        from azure.core.exceptions import ResourceExistsError

        self.ensure_table()
        entity = {
            "PartitionKey": f"idem-{key_hash}",
            "RowKey": KEY_ROW,
            "operationId": operation_id,
            "payloadHash": payload_hash,
            "createdAt": iso(now_utc()),
        }
        with self._unavailable():
            try:
                self.table.create_entity(entity)
                return {"operationId": operation_id, "payloadHash": payload_hash, "new": True}
            except ResourceExistsError:
                existing = self.table.get_entity(f"idem-{key_hash}", KEY_ROW)
                return {
                    "operationId": existing["operationId"],
                    "payloadHash": existing["payloadHash"],
                    "new": False,
                }

    # --- parked-work index ---------------------------------------------------------------

    def index_parked(self, op: Operation) -> None:
        """Remember a parked operation under its connection (read back on sign-in)."""
        self.ensure_table()
        with self._unavailable():
            self.table.upsert_entity(
                {
                    "PartitionKey": f"parked-{digest(op.connection.casefold())}",
                    "RowKey": op.operation_id,
                    "user": (op.user or "").casefold(),
                    "parkedUntil": op.parked_until or "",
                }
            )

    def unindex_parked(self, connection: str, operation_id: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        with self._unavailable(), contextlib.suppress(ResourceNotFoundError):
            self.table.delete_entity(f"parked-{digest(connection.casefold())}", operation_id)

    def parked_ids(self, connection: str, user: str | None = None) -> list[str]:
        """Operation ids parked under `connection` (and `user`, when given)."""
        self.ensure_table()
        pk = f"parked-{digest(connection.casefold())}"
        wanted = (user or "").casefold()
        with self._unavailable():
            rows = self.table.query_entities("PartitionKey eq @pk", parameters={"pk": pk})
            return [r["RowKey"] for r in rows if user is None or r.get("user", "") == wanted]

    def all_parked(self) -> list[tuple[str, str]]:
        """(connection hash partition, operation id) of every parked entry (for expiry)."""
        self.ensure_table()
        with self._unavailable():
            rows = self.table.query_entities(
                "PartitionKey ge 'parked-' and PartitionKey lt 'parked.'",
            )
            return [(r["PartitionKey"], r["RowKey"]) for r in rows]

    def stale(self, updated_before: datetime) -> list[Operation]:
        """`accepted`/`running` operations untouched since `updated_before` (for the cleanup)."""
        self.ensure_table()
        with self._unavailable():
            rows = self.table.query_entities(
                # Spaces around the parentheses: the SDK substitutes only whole @words.
                "RowKey eq @row and updatedAt lt @cutoff and "
                "( status eq @accepted or status eq @running )",
                parameters={
                    "row": OP_ROW,
                    "cutoff": iso(updated_before),
                    "accepted": ACCEPTED,
                    "running": RUNNING,
                },
            )
            return [from_entity(r) for r in rows]

    # --- retention -----------------------------------------------------------------------

    def purge(self, retention_days: int, *, now: datetime | None = None) -> int:
        """Delete finished operations (and their idempotency keys) older than the retention."""
        self.ensure_table()
        cutoff = iso((now or now_utc()) - timedelta(days=retention_days))
        removed = 0
        ops = self.table.query_entities(
            "RowKey eq @row and createdAt lt @cutoff",
            parameters={"row": OP_ROW, "cutoff": cutoff},
        )
        for entity in ops:
            op = from_entity(entity)
            if not op.terminal:
                continue
            self.table.delete_entity(op.operation_id, OP_ROW)
            removed += 1
        keys = self.table.query_entities(
            "RowKey eq @row and createdAt lt @cutoff",
            parameters={"row": KEY_ROW, "cutoff": cutoff},
        )
        for entity in keys:
            self.table.delete_entity(entity["PartitionKey"], KEY_ROW)
        return removed


_store: OperationStore | None = None
_store_lock = threading.Lock()


def get_store(settings: Settings) -> OperationStore:
    """The process's OperationStore (one pooled TableClient)."""
    global _store
    with _store_lock:
        if _store is None:
            _store = OperationStore(make_table_client(settings))
        return _store
