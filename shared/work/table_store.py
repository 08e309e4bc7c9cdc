"""The OperationStore on Azure Table Storage (one table, `operations`; Azurite locally).

Keys: an operation is PartitionKey = operation id, RowKey = "op" (spreads load over
partitions); an idempotency key is PartitionKey = "idem-<sha256(connection, kind, key)>", RowKey =
"key"; a parked-work entry is PartitionKey = "parked-<sha256(connection)>", RowKey = operation
id. Updates are conditional on the entity's ETag. Table Storage has no TTL: `purge` removes
finished operations older than the retention, run daily by the cleanup timer.
azure-data-tables is imported lazily (cold start).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import msgspec

from shared.settings import OPERATIONS_TABLE, Settings
from shared.work.record import Operation, digest, iso, key_hash, now_utc
from shared.work.states import Status
from shared.work.store import KeyClaim, ParkedEntry, StoreConflict, StoreUnavailable

OP_ROW = "op"
KEY_ROW = "key"
# Record fields that hold structures: stored as JSON text (Table properties are scalars).
_JSON_FIELDS = frozenset({"result", "error", "callback", "progress"})
_NOT_STORED = frozenset({"etag", "operationId"})


def to_entity(op: Operation) -> dict[str, Any]:
    """The Table entity for `op` (unset fields left out; structures as JSON text)."""
    data = msgspec.to_builtins(op, builtin_types=(bytes,))
    entity: dict[str, Any] = {"PartitionKey": op.operation_id, "RowKey": OP_ROW}
    for name, value in data.items():
        if name in _NOT_STORED:
            continue
        entity[name] = json.dumps(value, separators=(",", ":")) if name in _JSON_FIELDS else value
    return entity


def from_entity(entity: Any) -> Operation:
    """An Operation from a Table entity (a TableEntity or a plain dict)."""
    data: dict[str, Any] = {"operationId": entity["PartitionKey"], "attempts": 0}
    for name, value in entity.items():
        if name in ("PartitionKey", "RowKey", "etag") or value is None:
            continue
        if name in _JSON_FIELDS:
            data[name] = json.loads(value) if value else None
        elif name == "envelope":
            data[name] = bytes(value.value if hasattr(value, "value") else value)
        else:
            data[name] = value
    # Records written before the lifecycle rework (in flight during a deployment).
    if "kind" in data:
        data.setdefault("operation", data.pop("kind"))
    if "sendIssuedAt" in data:
        data.setdefault("progress", {"sendIssuedAt": data.pop("sendIssuedAt")})
    data.setdefault("operation", "")
    data.setdefault("connection", "")
    data.setdefault("status", Status.ACCEPTED)
    data["attempts"] = int(data["attempts"] or 0)
    op = msgspec.convert(data, Operation)
    metadata = getattr(entity, "metadata", None) or {}
    op.etag = metadata.get("etag")
    return op


def make_table_client(settings: Settings, table: str = OPERATIONS_TABLE, **options: Any) -> Any:
    """A TableClient for `table` (default: operations): connection string locally, identity in
    Azure. `options` go to the client (azure-core's retry_total, connection_timeout, ...)."""
    from azure.data.tables import TableServiceClient

    if settings.storage_connection:
        service = TableServiceClient.from_connection_string(settings.storage_connection, **options)
    elif settings.storage_table_service_uri:
        from shared.work.queueing import storage_credential

        service = TableServiceClient(
            endpoint=settings.storage_table_service_uri,
            credential=storage_credential(settings),
            **options,
        )
    else:
        raise StoreUnavailable(
            "No storage is configured: set AzureWebJobsStorage (a connection string) or "
            "AzureWebJobsStorage__tableServiceUri with a managed identity."
        )
    return service.get_table_client(table)


class TableOperationStore:
    """Operations, idempotency keys and the parked-work index in one Table."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self._ready = False
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> TableOperationStore:
        return cls(make_table_client(settings))

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

    def delete(self, operation_id: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        with self._unavailable(), contextlib.suppress(ResourceNotFoundError):
            self.table.delete_entity(operation_id, OP_ROW)

    def forget(self, op: Operation) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        with self._unavailable():
            with contextlib.suppress(ResourceNotFoundError):
                key = self.table.get_entity(f"idem-{key_hash_of(op)}", KEY_ROW)
                if key.get("operationId") == op.operation_id:
                    self.table.delete_entity(key["PartitionKey"], KEY_ROW)
            with contextlib.suppress(ResourceNotFoundError):
                self.table.delete_entity(op.operation_id, OP_ROW)

    # --- idempotency keys --------------------------------------------------------------

    def claim_key(self, key_hash: str, operation_id: str, payload_hash: str) -> KeyClaim:
        """The insert is conditional (Table Storage refuses a second entity with the same keys),
        so concurrent duplicates race safely: exactly one insert wins."""
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
                return KeyClaim(operation_id, payload_hash, new=True)
            except ResourceExistsError:
                existing = self.table.get_entity(f"idem-{key_hash}", KEY_ROW)
                return KeyClaim(existing["operationId"], existing["payloadHash"], new=False)

    # --- parked-work index ---------------------------------------------------------------

    def index_parked(self, op: Operation) -> None:
        self.ensure_table()
        with self._unavailable():
            self.table.upsert_entity(
                {
                    "PartitionKey": _parked_partition(op.connection),
                    "RowKey": op.operation_id,
                    "user": (op.user or "").casefold(),
                    "parkedUntil": op.parked_until or "",
                }
            )

    def unindex_parked(self, connection: str, operation_id: str) -> None:
        self.drop_parked(ParkedEntry(_parked_partition(connection), operation_id))

    def parked_ids(self, connection: str, user: str | None = None) -> list[str]:
        self.ensure_table()
        wanted = (user or "").casefold()
        with self._unavailable():
            rows = self.table.query_entities(
                "PartitionKey eq @pk", parameters={"pk": _parked_partition(connection)}
            )
            return [r["RowKey"] for r in rows if user is None or r.get("user", "") == wanted]

    def all_parked(self) -> list[ParkedEntry]:
        self.ensure_table()
        with self._unavailable():
            rows = self.table.query_entities(
                "PartitionKey ge 'parked-' and PartitionKey lt 'parked.'",
            )
            return [ParkedEntry(r["PartitionKey"], r["RowKey"]) for r in rows]

    def drop_parked(self, entry: ParkedEntry) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        with self._unavailable(), contextlib.suppress(ResourceNotFoundError):
            self.table.delete_entity(entry.partition, entry.operation_id)

    def stale(self, updated_before: datetime) -> list[Operation]:
        self.ensure_table()
        with self._unavailable():
            rows = self.table.query_entities(
                # Spaces around the parentheses: the SDK substitutes only whole @words.
                "RowKey eq @row and updatedAt lt @cutoff and "
                "( status eq @accepted or status eq @running )",
                parameters={
                    "row": OP_ROW,
                    "cutoff": iso(updated_before),
                    "accepted": Status.ACCEPTED.value,
                    "running": Status.RUNNING.value,
                },
            )
            return [from_entity(r) for r in rows]

    # --- retention -----------------------------------------------------------------------

    def purge(self, retention_days: int, *, now: datetime | None = None) -> int:
        self.ensure_table()
        cutoff = iso((now or now_utc()) - timedelta(days=retention_days))
        removed = 0
        with self._unavailable():
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


def _parked_partition(connection: str) -> str:
    return f"parked-{digest(connection.casefold())}"


def key_hash_of(op: Operation) -> str:
    """The idempotency key hash an operation was accepted under."""
    return key_hash(op.connection, op.kind, op.idempotency_key or op.operation_id)
