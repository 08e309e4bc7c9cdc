"""The Outbox: a submitted message waits there until it "went out"; then its recipients get it
and its Sent Items copy is filed (or it is deleted, with saveToSentItems false).

outlook-things-to-know-about-send-mail.md: the send call returns 202 after step 1; transport
picks the message up later and only then moves it to Sent Items (step 4) and delivers it
(steps 5-6). `sentCopyDelayMs` is that transit time; `sendRatePerMinute` with
`sendRateMode: hold` keeps messages over the rate in the Outbox until the rate allows them.
The schedule is kept in the database, so a restart with --state resumes it.
"""

from __future__ import annotations

import heapq
import itertools
import json
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
    due: float  # time.monotonic()
    seq: int
    outbox_id: str = field(compare=False)  # immutable id while in the Outbox


class Outbox:
    """Messages in transit, released when due by a background timer (and on every Graph call).

    `mailbox_of(id)` finds a directory mailbox by id; `deliver(tenant id, mailbox, row)` hands
    a message to its recipients.
    """

    def __init__(
        self,
        store: Store,
        deliver: Callable[[str, Any, sqlite3.Row], None],
        mailbox_of: Callable[[str], Any],
    ) -> None:
        self.store = store
        self._deliver = deliver
        self._mailbox_of = mailbox_of
        self._queue: list[_Pending] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._timer: threading.Thread | None = None
        # Mail that was in transit when the sandbox stopped leaves when it was due (or now).
        for row in store.transit():
            self._schedule(row["outbox_id"], max(0.0, row["due"] - time.time()))

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
        also: str | None = None,
    ) -> str:
        """Put a submitted message (stored as `row`, not a draft) in the Outbox under a new id;
        after `delay` seconds it is delivered and filed in Sent Items as `final_id` (when
        `save`), and a copy in the Sent Items of mailbox id `also` (a delegator's, when its
        settings ask for one). Returns the Outbox copy's immutable id."""
        outbox = self.store.folder(mailbox.id, "outbox")
        moved = self.store.move_message(row, outbox["id"])
        moved = self.store.rekey_message(moved, ids.new_immutable_id())
        outbox_id = moved["immutable_id"]
        self.store.add_transit(
            outbox_id, mailbox.id, tenant_id, final_id, save, time.time() + max(0.0, delay), also
        )
        if delay <= 0:
            self._release(outbox_id)
        else:
            self._schedule(outbox_id, delay)
        return outbox_id

    def release(self) -> None:
        """Deliver and file every message whose time has come."""
        while True:
            with self._cond:
                if not self._queue or self._queue[0].due > time.monotonic():
                    return
                entry = heapq.heappop(self._queue)
            self._release(entry.outbox_id)

    def _schedule(self, outbox_id: str, delay: float) -> None:
        with self._cond:
            heapq.heappush(
                self._queue, _Pending(time.monotonic() + delay, next(self._seq), outbox_id)
            )
            self._cond.notify_all()
            if self._timer is None or not self._timer.is_alive():
                self._timer = threading.Thread(target=self._run, name="sandbox-outbox", daemon=True)
                self._timer.start()

    def _release(self, outbox_id: str) -> None:
        plan = self.store.claim_transit(outbox_id)
        if plan is None:  # released already, or the sandbox was reset
            return
        mailbox = self._mailbox_of(plan["mailbox"])
        row = self.store.message(plan["mailbox"], outbox_id)
        if row is None or mailbox is None:  # deleted from the Outbox meanwhile
            return
        # Recipients first: once a message has left the Outbox it has been delivered, so a
        # client that sees the Outbox empty may count copies.
        self._deliver(plan["tenant"], mailbox, row)
        if plan["also"]:
            self.store.ensure_mailbox(plan["also"])
            theirs = self.store.folder(plan["also"], "sentitems")
            copied = self.store.create_message(plan["also"], theirs["id"], json.loads(row["data"]))
            self.store.copy_attachments(row["immutable_id"], copied["immutable_id"])
        if plan["save"]:
            sent = self.store.folder(plan["mailbox"], "sentitems")
            row = self.store.rekey_message(row, plan["final_id"])
            self.store.move_message(row, sent["id"])
        else:
            self.store.delete_message(row)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                wait = self._queue[0].due - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
            try:
                self.release()
            except Exception:  # a reset racing a release must not stop the timer
                log.exception("releasing the Outbox failed")
