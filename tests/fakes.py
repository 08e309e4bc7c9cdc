"""In-memory stand-ins for the lifecycle's storage: an OperationStore and the work queues.

MemoryStore keeps the Table store's contract (tests/contract/test_operation_store.py runs the
same tests on both): conditional saves by etag, exactly-once key claims, the parked index.
MemoryQueues records what was queued, with its delay, so tests can deliver it themselves.
"""

from __future__ import annotations

import copy
import itertools
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.timestamps import iso, now_utc, parse_iso
from shared.work.idempotency import Accepted, accept
from shared.work.queueing import encode_envelope
from shared.work.record import Operation, digest, key_hash
from shared.work.states import Status
from shared.work.store import KeyClaim, ParkedEntry, StoreConflict, StoreUnavailable


class MemoryStore:
    """An OperationStore in a dict, safe for threads."""

    def __init__(self) -> None:
        self.ops: dict[str, Operation] = {}
        self.keys: dict[str, dict] = {}
        self.parked: dict[tuple[str, str], dict] = {}
        self._etags = itertools.count(1)
        self._lock = threading.Lock()

    def _stamp(self, op: Operation) -> Operation:
        op.etag = f'W/"{next(self._etags)}"'
        stored = copy.deepcopy(op)
        self.ops[op.operation_id] = stored
        return op

    def create(self, op: Operation) -> Operation:
        with self._lock:
            if op.operation_id in self.ops:
                raise StoreConflict(f"operation {op.operation_id} exists")
            stamp = iso(now_utc())
            op.created_at = op.created_at or stamp
            op.updated_at = stamp
            return self._stamp(op)

    def get(self, operation_id: str) -> Operation | None:
        with self._lock:
            found = self.ops.get(operation_id)
            return copy.deepcopy(found) if found else None

    def save(self, op: Operation) -> Operation:
        with self._lock:
            current = self.ops.get(op.operation_id)
            if current is None or current.etag != op.etag:
                raise StoreConflict(f"operation {op.operation_id} changed meanwhile")
            op.updated_at = iso(now_utc())
            return self._stamp(op)

    def delete(self, operation_id: str) -> None:
        with self._lock:
            self.ops.pop(operation_id, None)

    def forget(self, op: Operation) -> None:
        with self._lock:
            hashed = key_hash(op.connection, op.kind, op.idempotency_key or op.operation_id)
            if self.keys.get(hashed, {}).get("operationId") == op.operation_id:
                del self.keys[hashed]
            self.ops.pop(op.operation_id, None)

    def claim_key(self, key_hash: str, operation_id: str, payload_hash: str) -> KeyClaim:
        with self._lock:
            existing = self.keys.get(key_hash)
            if existing is None:
                self.keys[key_hash] = {
                    "operationId": operation_id,
                    "payloadHash": payload_hash,
                    "createdAt": iso(now_utc()),
                }
                return KeyClaim(operation_id, payload_hash, new=True)
            return KeyClaim(existing["operationId"], existing["payloadHash"], new=False)

    def index_parked(self, op: Operation) -> None:
        with self._lock:
            self.parked[(_partition(op.connection), op.operation_id)] = {
                "user": (op.user or "").casefold()
            }

    def unindex_parked(self, connection: str, operation_id: str) -> None:
        self.drop_parked(ParkedEntry(_partition(connection), operation_id))

    def parked_ids(self, connection: str, user: str | None = None) -> list[str]:
        wanted = (user or "").casefold()
        with self._lock:
            return [
                op_id
                for (partition, op_id), row in self.parked.items()
                if partition == _partition(connection) and (user is None or row["user"] == wanted)
            ]

    def all_parked(self) -> list[ParkedEntry]:
        with self._lock:
            return [ParkedEntry(p, op_id) for p, op_id in self.parked]

    def drop_parked(self, entry: ParkedEntry) -> None:
        with self._lock:
            self.parked.pop((entry.partition, entry.operation_id), None)

    def stale(self, updated_before: datetime) -> list[Operation]:
        cutoff = iso(updated_before) or ""
        with self._lock:
            return [
                copy.deepcopy(op)
                for op in self.ops.values()
                if op.status in (Status.ACCEPTED, Status.RUNNING) and (op.updated_at or "") < cutoff
            ]

    def purge(self, retention_days: int, *, now: datetime | None = None) -> int:
        cutoff = iso((now or now_utc()) - timedelta(days=retention_days)) or ""
        with self._lock:
            old = [
                op_id
                for op_id, op in self.ops.items()
                if op.terminal and (op.created_at or "") < cutoff
            ]
            for op_id in old:
                del self.ops[op_id]
            for key in [k for k, v in self.keys.items() if v["createdAt"] < cutoff]:
                del self.keys[key]
            return len(old)


class FailingStore:
    """A store that fails every call: proves a code path never touches storage."""

    def __getattr__(self, name: str):
        def refuse(*args, **kwargs):
            raise AssertionError(f"storage touched: {name}")

        return refuse


class UnavailableStore(MemoryStore):
    """A MemoryStore whose saves fail with StoreUnavailable while `down` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def save(self, op: Operation) -> Operation:
        if self.down:
            raise StoreUnavailable("Table Storage is unavailable: ServiceRequestError")
        return super().save(op)


@dataclass
class Queued:
    kind: str
    body: bytes
    delay: float


@dataclass
class MemoryQueues:
    """Records every message queued (and poisoned) in order."""

    messages: list[Queued] = field(default_factory=list)
    poisoned: list[Queued] = field(default_factory=list)
    down: bool = False

    def enqueue(self, kind: str, envelope: bytes, delay: float = 0.0) -> None:
        if self.down:
            from shared.errors import StorageUnavailable

            raise StorageUnavailable("Queue storage is unavailable; retry later.", retry_after=5)
        self.messages.append(Queued(kind, envelope, delay))

    def to_poison(self, kind: str, body: bytes) -> None:
        self.poisoned.append(Queued(kind, body, 0.0))

    def take(self) -> list[Queued]:
        taken, self.messages = self.messages, []
        return taken


class Clock:
    """A clock tests move by hand (no sleeping)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or now_utc()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _partition(connection: str) -> str:
    return f"parked-{digest(connection.casefold())}"


def due(op: Operation, clock: Clock) -> bool:
    """True when a re-scheduled operation's next attempt is due on `clock`."""
    when = parse_iso(op.next_attempt_at)
    return when is None or when <= clock()


def accept_one(
    store, request: dict, key: str | None = None, operation_id: str | None = None
) -> Accepted:
    """Accept `request` as a send into `store`, as the HTTP edge does (a new id unless given)."""
    operation_id = operation_id or str(uuid.uuid4())
    return accept(
        store,
        kind="send",
        operation_id=operation_id,
        request_json=request,
        envelope=encode_envelope(operation_id, request),
        key=key,
        user=request.get("user"),
    )
