"""Single-use request nonces: each (keyid, nonce) is accepted once until it expires.

`NonceStore` is the protocol; `TableNonceStore` keeps the nonces in Azure Table Storage (table
`requestnonces`, created on first use) so every instance sees every other instance's nonces.
A conditional insert decides: of two requests with the same nonce exactly one inserts, the
other is a replay. An expired entry may be taken over (ETag-conditional): by then the `created`
window refuses the old signature anyway. Keys are SHA-256 hex digests (Table keys may not hold
`/ \\ # ?` or control characters). `purge` removes expired entries (the daily clean-up).
Raises `StorageUnavailable` (503) when Table Storage fails: refusing beats accepting unchecked.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from shared.errors import StorageUnavailable

_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class NonceStore(Protocol):
    def first_use(self, key_id: str, nonce: str, *, expires_in: float) -> bool:
        """True the first time (key_id, nonce) is seen within its lifetime; False for a replay."""
        ...


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime(_FORMAT)


def _hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class TableNonceStore:
    """Nonces as Table entities: PartitionKey per keyid, RowKey per nonce, `expiresAt`."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self._ready = False
        self._lock = threading.Lock()

    def _ensure_table(self) -> None:
        from azure.core.exceptions import ResourceExistsError

        with self._lock:
            if self._ready:
                return
            with contextlib.suppress(ResourceExistsError):
                self.table.create_table()
            self._ready = True

    def first_use(
        self, key_id: str, nonce: str, *, expires_in: float, now: datetime | None = None
    ) -> bool:
        from azure.core import MatchConditions
        from azure.core.exceptions import (
            AzureError,
            ResourceExistsError,
            ResourceModifiedError,
        )
        from azure.data.tables import UpdateMode

        current = now or datetime.now(UTC)
        entity = {
            "PartitionKey": f"n-{_hex(key_id)[:32]}",
            "RowKey": _hex(nonce),
            "expiresAt": _iso(current + timedelta(seconds=expires_in)),
        }
        try:
            self._ensure_table()
            try:
                self.table.create_entity(entity)
                return True
            except ResourceExistsError:
                seen = self.table.get_entity(entity["PartitionKey"], entity["RowKey"])
            if str(seen.get("expiresAt", "")) > _iso(current):
                return False
            try:
                self.table.update_entity(
                    entity,
                    mode=UpdateMode.REPLACE,
                    etag=seen.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
            except ResourceModifiedError:
                return False  # another request took the expired entry first
            return True
        except AzureError as exc:
            raise StorageUnavailable(
                f"Table Storage is unavailable ({type(exc).__name__}); the request's nonce "
                "could not be checked. Retry later.",
                retry_after=5.0,
            ) from exc

    def purge(self, now: datetime | None = None) -> int:
        """Delete every expired nonce; returns how many."""
        self._ensure_table()
        cutoff = _iso(now or datetime.now(UTC))
        removed = 0
        for row in self.table.query_entities("expiresAt lt @cutoff", parameters={"cutoff": cutoff}):
            self.table.delete_entity(row["PartitionKey"], row["RowKey"])
            removed += 1
        return removed
