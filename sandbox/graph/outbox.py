"""The Outbox: a sent draft waits there (sentCopyDelayMs) before its Sent Items copy is filed."""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any

from sandbox.graph.store import Store, new_id


class Outbox:
    """Sent drafts in transit; filed in Sent Items under the draft's immutable id once due.

    Pending entries live in memory: a restart or reset forgets them.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        # (due, mailbox, outbox immutable id, the draft's immutable id, Sent Items folder id)
        self._pending: list[tuple[float, str, str, str, str]] = []
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self._pending.clear()

    def hold(
        self, mailbox: str, draft: sqlite3.Row, data: dict[str, Any], sent: str, delay_ms: int
    ) -> str:
        """Exchange's in-between state after `/send`: the draft is gone, the message sits in
        the Outbox (another id) and its Sent Items copy, under the draft's immutable id, is
        filed only once it went out. Returns the Outbox copy's immutable id."""
        outbox = self.store.folder(mailbox, "outbox")
        moved = self.store.move_message(draft, outbox["id"], data)
        temporary = new_id("AAkALgA")
        self.store.rekey_message(moved, temporary)
        due = time.monotonic() + delay_ms / 1000
        with self._lock:
            self._pending.append((due, mailbox, temporary, draft["immutable_id"], sent))
        return temporary

    def release(self) -> None:
        """File every Outbox message whose delay has passed in Sent Items."""
        if not self._pending:
            return
        now = time.monotonic()
        with self._lock:
            due = [item for item in self._pending if item[0] <= now]
            self._pending = [item for item in self._pending if item[0] > now]
        for _, mailbox, temporary, immutable_id, sent in due:
            row = self.store.message(mailbox, temporary)
            if row is None:  # deleted meanwhile, or the sandbox was reset
                continue
            self.store.move_message(self.store.rekey_message(row, immutable_id), sent)
