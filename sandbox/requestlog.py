"""A bounded, thread-safe log of the requests the sandbox served (for tests and the control API)."""

from __future__ import annotations

import itertools
import threading
from collections import deque
from typing import Any


class RequestLog:
    """Ring buffer of request entries, each numbered with an increasing `seq`."""

    def __init__(self, capacity: int = 5000) -> None:
        self._lock = threading.Lock()
        self._entries: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._seq = itertools.count(1)

    def append(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Store an entry (a copy gets a `seq`); returns the stored entry."""
        with self._lock:
            stored = {"seq": next(self._seq), **entry}
            self._entries.append(stored)
            return stored

    def update(self, stored: dict[str, Any] | None, **fields: Any) -> None:
        """Add `fields` to a stored entry (what append returned); None: nothing was stored."""
        if stored is None:
            return
        with self._lock:
            stored.update(fields)

    def recent(self, limit: int = 200, since: int | None = None) -> list[dict[str, Any]]:
        """The newest `limit` entries (oldest first), only those with seq > since when given."""
        with self._lock:
            items = [e for e in self._entries if since is None or e["seq"] > since]
        return [dict(e) for e in items[-limit:]] if limit > 0 else []

    def last_seq(self) -> int:
        with self._lock:
            return self._entries[-1]["seq"] if self._entries else 0

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
