"""The Outbox: a submitted message waits there until it "went out"; then its Sent Items copy is
filed (or it is deleted, with saveToSentItems false) and its recipients get it.

outlook-things-to-know-about-send-mail.md: the send call returns 202 after step 1; transport
picks the message up later and only then moves it to Sent Items (step 4) and delivers it
(steps 5-6). `sentCopyDelayMs` is that transit time; `sendRatePerMinute` with
`sendRateMode: hold` keeps messages over the rate in the Outbox until the rate allows them.
Pending messages are scheduled in memory: a restart or reset forgets them.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.graph import ids
from sandbox.graph.store import Store

log = logging.getLogger("sandbox.graph.outbox")


@dataclass(order=True)
class _Pending:
    due: float
    seq: int
    mailbox: Any = field(compare=False)  # sandbox.directory.Mailbox
    tenant_id: str = field(compare=False)
    outbox_id: str = field(compare=False)  # immutable id while in the Outbox
    final_id: str = field(compare=False)  # immutable id of the Sent Items copy
    save: bool = field(compare=False)


class Outbox:
    """Messages in transit, released when due by a background timer (and on every Graph call)."""

    def __init__(
        self,
        store: Store,
        deliver: Callable[[str, Any, sqlite3.Row], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self._deliver = deliver
        self._clock = clock
        self._queue: list[_Pending] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._timer: threading.Thread | None = None

    def reset(self) -> None:
        with self._cond:
            self._queue.clear()
            self._cond.notify_all()

    def submit(
        self,
        mailbox: Any,
        tenant_id: str,
        row: sqlite3.Row,
        *,
        final_id: str,
        save: bool,
        delay: float,
    ) -> str:
        """Put a submitted message (stored as `row`, not a draft) in the Outbox under a new id;
        after `delay` seconds it is filed in Sent Items as `final_id` (when `save`) and
        delivered. Returns the Outbox copy's immutable id."""
        outbox = self.store.folder(mailbox.id, "outbox")
        moved = self.store.move_message(row, outbox["id"])
        moved = self.store.rekey_message(moved, ids.new_immutable_id())
        entry = _Pending(
            self._clock() + delay,
            next(self._seq),
            mailbox,
            tenant_id,
            moved["immutable_id"],
            final_id,
            save,
        )
        if delay <= 0:
            self._release(entry)
            return entry.outbox_id
        with self._cond:
            heapq.heappush(self._queue, entry)
            self._cond.notify_all()
            if self._timer is None or not self._timer.is_alive():
                self._timer = threading.Thread(target=self._run, name="sandbox-outbox", daemon=True)
                self._timer.start()
        return entry.outbox_id

    def release(self) -> None:
        """File and deliver every message whose time has come."""
        while True:
            with self._cond:
                if not self._queue or self._queue[0].due > self._clock():
                    return
                entry = heapq.heappop(self._queue)
            self._release(entry)

    def _release(self, entry: _Pending) -> None:
        row = self.store.message(entry.mailbox.id, entry.outbox_id)
        if row is None:  # deleted meanwhile, or the sandbox was reset
            return
        if entry.save:
            sent = self.store.folder(entry.mailbox.id, "sentitems")
            row = self.store.rekey_message(row, entry.final_id)
            row = self.store.move_message(row, sent["id"])
        self._deliver(entry.tenant_id, entry.mailbox, row)
        if not entry.save:
            self.store.delete_message(row)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                wait = self._queue[0].due - self._clock()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
            try:
                self.release()
            except Exception:  # a reset racing a release must not stop the timer
                log.exception("releasing the Outbox failed")
