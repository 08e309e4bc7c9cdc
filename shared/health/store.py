"""Where sign-in health lives: Table Storage `signinhealth` (created on first use).

Entities: PartitionKey `signin` + RowKey the sign-in's secret name (a `SignInRecord`);
`overdue` + operation id (parked work already reported as overdue); `run` + `audit` (when the
last permission audit ran). Writes are ETag-conditional: of two instances that see the same
state change exactly one records it, and only that one tells anybody. Table Storage, not Key
Vault: a run writes a record per sign-in, and Key Vault writes are kept for refresh tokens.
Raises `StorageUnavailable` when Table Storage fails.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any, Protocol

import msgspec

from shared.errors import StorageUnavailable
from shared.health.records import SignInRecord

SIGNIN, OVERDUE, RUN = "signin", "overdue", "run"


class HealthStore(Protocol):
    def get(self, key: str) -> SignInRecord | None: ...

    def save(self, record: SignInRecord) -> bool:
        """Insert or replace `record` unless it changed since it was read (its etag); False
        when someone else wrote first."""
        ...

    def records(self) -> list[SignInRecord]: ...

    def overdue_reported(self) -> set[str]: ...

    def mark_overdue(self, operation_id: str) -> bool:
        """Remember that `operation_id` was reported; False when it already was."""
        ...

    def forget_overdue(self, operation_id: str) -> None: ...

    def last_run(self, name: str) -> str | None: ...

    def set_last_run(self, name: str, when: str) -> None: ...


class TableHealthStore:
    """HealthStore on a Table client (azure-data-tables)."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self._ready = False
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def _unavailable(self) -> Iterator[None]:
        from azure.core.exceptions import AzureError

        try:
            with self._lock:
                if not self._ready:
                    from azure.core.exceptions import ResourceExistsError

                    with contextlib.suppress(ResourceExistsError):
                        self.table.create_table()
                    self._ready = True
            yield
        except AzureError as exc:
            raise StorageUnavailable(
                f"Table Storage is unavailable ({type(exc).__name__}); retry later.",
                retry_after=5.0,
            ) from exc

    def get(self, key: str) -> SignInRecord | None:
        from azure.core.exceptions import ResourceNotFoundError

        with self._unavailable():
            try:
                entity = self.table.get_entity(SIGNIN, key)
            except ResourceNotFoundError:
                return None
        return _record(entity)

    def save(self, record: SignInRecord) -> bool:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError
        from azure.data.tables import UpdateMode

        entity = {
            "PartitionKey": SIGNIN,
            "RowKey": record.key,
            **{k: v for k, v in msgspec.to_builtins(record).items() if k != "etag"},
        }
        with self._unavailable():
            try:
                if record.etag is None:
                    meta = self.table.create_entity(entity)
                else:
                    meta = self.table.update_entity(
                        entity,
                        mode=UpdateMode.REPLACE,
                        etag=record.etag,
                        match_condition=MatchConditions.IfNotModified,
                    )
            except (ResourceExistsError, ResourceModifiedError):
                return False
            except Exception as exc:
                if getattr(exc, "status_code", None) in (409, 412):
                    return False
                raise
        record.etag = (meta or {}).get("etag")
        return True

    def records(self) -> list[SignInRecord]:
        with self._unavailable():
            rows = list(self.table.query_entities("PartitionKey eq @pk", parameters={"pk": SIGNIN}))
        return [_record(row) for row in rows]

    def overdue_reported(self) -> set[str]:
        with self._unavailable():
            rows = self.table.query_entities("PartitionKey eq @pk", parameters={"pk": OVERDUE})
            return {str(row["RowKey"]) for row in rows}

    def mark_overdue(self, operation_id: str) -> bool:
        from azure.core.exceptions import ResourceExistsError

        with self._unavailable():
            try:
                self.table.create_entity({"PartitionKey": OVERDUE, "RowKey": operation_id})
            except ResourceExistsError:
                return False
        return True

    def forget_overdue(self, operation_id: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        with self._unavailable(), contextlib.suppress(ResourceNotFoundError):
            self.table.delete_entity(OVERDUE, operation_id)

    def last_run(self, name: str) -> str | None:
        from azure.core.exceptions import ResourceNotFoundError

        with self._unavailable():
            try:
                return str(self.table.get_entity(RUN, name).get("at") or "") or None
            except ResourceNotFoundError:
                return None

    def set_last_run(self, name: str, when: str) -> None:
        from azure.data.tables import UpdateMode

        with self._unavailable():
            self.table.upsert_entity(
                {"PartitionKey": RUN, "RowKey": name, "at": when}, mode=UpdateMode.REPLACE
            )


def _record(entity: Any) -> SignInRecord:
    fields = {k: v for k, v in dict(entity).items() if k not in ("PartitionKey", "RowKey")}
    record = msgspec.convert(fields, SignInRecord)
    record.etag = (getattr(entity, "metadata", None) or {}).get("etag")
    return record


class MemoryHealthStore:
    """The same contract in memory (unit tests, and a run without storage never uses it)."""

    def __init__(self) -> None:
        self._records: dict[str, tuple[int, SignInRecord]] = {}
        self._overdue: set[str] = set()
        self._runs: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> SignInRecord | None:
        with self._lock:
            found = self._records.get(key)
        if found is None:
            return None
        copy = msgspec.structs.replace(found[1])
        copy.etag = str(found[0])
        return copy

    def save(self, record: SignInRecord) -> bool:
        with self._lock:
            current = self._records.get(record.key)
            if (current is None) != (record.etag is None) or (
                current is not None and str(current[0]) != record.etag
            ):
                return False
            version = (current[0] + 1) if current else 1
            self._records[record.key] = (version, msgspec.structs.replace(record, etag=None))
            record.etag = str(version)
            return True

    def records(self) -> list[SignInRecord]:
        return [r for r in (self.get(k) for k in list(self._records)) if r is not None]

    def overdue_reported(self) -> set[str]:
        return set(self._overdue)

    def mark_overdue(self, operation_id: str) -> bool:
        with self._lock:
            if operation_id in self._overdue:
                return False
            self._overdue.add(operation_id)
            return True

    def forget_overdue(self, operation_id: str) -> None:
        self._overdue.discard(operation_id)

    def last_run(self, name: str) -> str | None:
        return self._runs.get(name)

    def set_last_run(self, name: str, when: str) -> None:
        self._runs[name] = when
