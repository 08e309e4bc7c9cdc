"""Per-mailbox limits shared by every instance, kept in Table Storage (table `mailboxlimits`).

Concurrency: each app+mailbox has `concurrent` slot entities (`slot-0` ...). A request claims a
free or expired one with an ETag-conditional write that names the holder and an expiry
(`MAILBOX_SLOT_SECONDS`): one round trip when this instance's copy of the slot is current.
Release is a write on a background thread, so the request does not wait for it; until it lands
the slot counts as busy (safe), and a request of this instance may take it over at once. A
killed instance renews nothing: its slots are free when their expiry passes. Long requests
have their slot renewed in the background.

The same slot entities carry the request budget (per-minute counts of the requests each slot
let through: the sum over the last 11 minutes covers any 10-minute window) and a server's
pause (`notBefore`, written into every slot, so every instance's next claim meets a changed
ETag, reads the slots and sees it).

Sending rate: one entity per sending mailbox (`sends`) holds the booked departures
(shared.graph.send_window), written ETag-conditionally.

When Table Storage fails, the limits fall back to this instance alone (InstanceLimits) for
DOWN_RETRY_SECONDS at a time, with a warning in the log; nothing waits on storage meanwhile.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import os
import queue
import random
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.graph import send_window
from shared.graph.limiter import (
    InstanceLimits,
    MailboxPolicy,
    Scope,
    Ticket,
    busy_error,
    paused_error,
)

log = logging.getLogger(__name__)

DEFAULT_SLOT_SECONDS = 15.0
# While storage fails, the per-instance fallback is used for this long before trying again.
DOWN_RETRY_SECONDS = 10.0
# A request waiting for a slot reads the slots again after this long (doubling to the cap).
POLL_SECONDS = 0.02
POLL_CAP_SECONDS = 0.25
# Request budget: per-minute counts, a sliding 10 minutes is inside the last 11 of them, and a
# margin for counts this instance has not seen yet.
BUCKET_SECONDS = 60
BUDGET_BUCKETS = 11
BUDGET_SHARE = 0.95
SENDS_ROW = "sends"


class StorageDown(Exception):
    """Table Storage did not answer (or is not configured): use the per-instance limits."""


def _partition(prefix: str, key: str) -> str:
    # Table keys may not hold '/', '\\', '#', '?' or control characters: a digest never does.
    return prefix + hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]


def _minute(now: float) -> int:
    return int(now // BUCKET_SECONDS)


@dataclass
class _Slot:
    etag: str | None = None  # None: no entity seen (claim by insert)
    holder: str = ""
    expires: float = 0.0
    not_before: float = 0.0
    calls: dict[str, int] = field(default_factory=dict)

    def recent_calls(self, now: float) -> int:
        first = _minute(now) - BUDGET_BUCKETS + 1
        return sum(n for m, n in self.calls.items() if int(m) >= first)


def _slot_of(entity: Any) -> _Slot:
    try:
        calls = {str(k): int(v) for k, v in json.loads(entity.get("calls") or "{}").items()}
    except (ValueError, AttributeError):
        calls = {}
    return _Slot(
        etag=entity.metadata.get("etag"),
        holder=str(entity.get("holder") or ""),
        expires=float(entity.get("expires") or 0.0),
        not_before=float(entity.get("notBefore") or 0.0),
        calls=calls,
    )


class _ScopeState:
    """This instance's copy of one app+mailbox's slots, and who here is using them."""

    def __init__(self, partition: str) -> None:
        self.partition = partition
        self.cond = threading.Condition()
        self.slots: dict[int, _Slot] = {}
        self.claiming: set[int] = set()
        self.released: set[str] = set()  # our holders, released here, not yet in storage
        self.loaded = False
        self.read_at = 0.0
        self.reading = False
        self.concurrent = 1  # the largest slot count a policy asked for here


class _SharedTicket:
    """One claimed slot; release() hands the write to the background thread."""

    def __init__(
        self, owner: TableMailboxLimits, state: _ScopeState, index: int, token: str, etag: str
    ) -> None:
        self.owner = owner
        self.state = state
        self.index = index
        self.token = token
        self.etag = etag
        self.written_at = owner.clock()
        self.done = False

    def release(self) -> None:
        if self.done:
            return
        self.done = True
        with self.state.cond:
            self.state.released.add(self.token)
            self.state.cond.notify_all()
        self.owner._jobs.put(("release", self))


class TableMailboxLimits:
    """MailboxLimits kept in a Table shared by every instance (see the module docstring)."""

    def __init__(
        self,
        table_factory: Callable[[], Any],
        *,
        fallback: InstanceLimits | None = None,
        slot_seconds: float = DEFAULT_SLOT_SECONDS,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        instance: str | None = None,
    ) -> None:
        self._table_factory = table_factory
        self._table: Any = None
        self.fallback = fallback or InstanceLimits(clock=clock, sleep=sleep)
        self.slot_seconds = slot_seconds
        self.clock = clock
        self.sleep = sleep
        # Names this instance in the holder of every slot it claims (its pid first: operators
        # and tests can tell whose a slot is).
        self.instance = instance or f"{os.getpid()}-{secrets.token_hex(3)}"
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self._states: dict[str, _ScopeState] = {}
        self._sends: dict[str, tuple[str | None, list[send_window.Booking]]] = {}
        self._down_until = 0.0
        self._down_reason: str | None = None
        self._jobs: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._held: dict[str, _SharedTicket] = {}
        self._worker: threading.Thread | None = None

    # --- storage --------------------------------------------------------------------------

    def _client(self) -> Any:
        with self._lock:
            if self._table is None:
                from azure.core.exceptions import ResourceExistsError

                try:
                    table = self._table_factory()
                except Exception as exc:  # not configured: as good as down
                    raise StorageDown(f"not configured ({exc})") from exc
                try:
                    table.create_table()
                except ResourceExistsError:
                    pass
                except Exception as exc:
                    raise StorageDown(type(exc).__name__) from exc
                self._table = table
            return self._table

    def _call(self, method: str, *args: Any, **kw: Any) -> Any:
        """`table.<method>(*args, **kw)`; storage failures (not conflicts) become StorageDown."""
        from azure.core.exceptions import (
            AzureError,
            ResourceExistsError,
            ResourceModifiedError,
            ResourceNotFoundError,
        )

        table = self._client()
        try:
            result = getattr(table, method)(*args, **kw)
            # A query is a pager: its requests run while it is read, so read it here.
            return list(result) if method == "query_entities" else result
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
            raise
        except AzureError as exc:
            if getattr(exc, "status_code", None) == 412:
                raise
            raise StorageDown(type(exc).__name__) from exc

    def _is_down(self) -> bool:
        with self._lock:
            return self.clock() < self._down_until

    def _went_down(self, exc: BaseException) -> None:
        with self._lock:
            first = self._down_reason is None
            self._down_reason = str(exc) or type(exc).__name__
            self._down_until = self.clock() + DOWN_RETRY_SECONDS
        if first:
            log.warning(
                "mailbox limits: Table Storage is unavailable (%s); every instance keeps the "
                "limits alone (per-instance fallback) until it answers again",
                self._down_reason,
            )

    def _answered(self) -> None:
        with self._lock:
            was, self._down_reason = self._down_reason, None
        if was is not None:
            log.warning("mailbox limits: Table Storage answers again; limits are shared again")

    # --- concurrency slots ----------------------------------------------------------------

    def enter(
        self, scope: Scope, policy: MailboxPolicy, *, max_wait: float, cleanup: bool = False
    ) -> Ticket:
        if self._is_down():
            return self.fallback.enter(scope, policy, max_wait=max_wait, cleanup=cleanup)
        try:
            ticket = self._enter(scope, policy, max_wait, cleanup)
        except StorageDown as exc:
            self._went_down(exc)
            return self.fallback.enter(scope, policy, max_wait=max_wait, cleanup=cleanup)
        self._answered()
        return ticket

    def _state(self, scope: Scope) -> _ScopeState:
        with self._lock:
            state = self._states.get(scope.key)
            if state is None:
                state = self._states[scope.key] = _ScopeState(_partition("a", scope.key))
            return state

    def _enter(self, scope: Scope, policy: MailboxPolicy, max_wait: float, cleanup: bool) -> Ticket:
        state = self._state(scope)
        state.concurrent = max(state.concurrent, policy.concurrent)
        deadline = self.clock() + max_wait
        if not state.loaded:
            self._read(state, force=True)
        poll = POLL_SECONDS
        while True:
            now = self.clock()
            with state.cond:
                not_before = max((s.not_before for s in state.slots.values()), default=0.0)
                if cleanup:
                    not_before = 0.0
                index = None if not_before > now else self._pick(state, policy, now)
            if not_before > now:
                if not_before > deadline:
                    raise paused_error(not_before - now)
                self.sleep(not_before - now)
                continue
            if index is not None:
                try:
                    self._check_budget(state, policy, now, deadline)
                    ticket = self._claim(state, index, now)
                finally:
                    with state.cond:
                        state.claiming.discard(index)
                if ticket is not None:
                    return ticket
                self._read(state, force=True)  # a stale copy: read, then try again
                continue
            if now >= deadline:
                raise busy_error()
            with state.cond:
                # A release here wakes us at once; another instance's only shows on a read.
                state.cond.wait(min(poll, max(0.0, deadline - now)) * random.uniform(0.5, 1.0))  # noqa: S311
            poll = min(poll * 2, POLL_CAP_SECONDS)
            self._read(state, force=False, older_than=poll)

    def _pick(self, state: _ScopeState, policy: MailboxPolicy, now: float) -> int | None:
        """A slot that looks free to this instance (holds state.cond); marks it as claiming."""
        known = []
        for index in range(policy.concurrent):
            if index in state.claiming:
                continue
            slot = state.slots.get(index)
            if slot is None:
                known.append((1, index))
            elif not slot.holder or slot.expires <= now or slot.holder in state.released:
                known.append((0, index))
        if not known:
            return None
        index = min(known)[1]
        state.claiming.add(index)
        return index

    def _claim(self, state: _ScopeState, index: int, now: float) -> _SharedTicket | None:
        """The conditional write that takes slot `index`; None when our copy was stale."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError
        from azure.data.tables import UpdateMode

        with state.cond:
            slot = state.slots.get(index) or _Slot()
            calls = {m: n for m, n in slot.calls.items() if int(m) > _minute(now) - BUDGET_BUCKETS}
        minute = str(_minute(now))
        calls[minute] = calls.get(minute, 0) + 1
        token = f"{self.instance}:{next(self._counter)}"
        entity = {
            "PartitionKey": state.partition,
            "RowKey": f"slot-{index}",
            "holder": token,
            "expires": now + self.slot_seconds,
            "calls": json.dumps(calls, separators=(",", ":")),
        }
        try:
            if slot.etag is None:
                meta = self._call("create_entity", entity)
            else:
                etag = slot.etag
                meta = self._call(
                    "update_entity",
                    entity,
                    mode=UpdateMode.MERGE,
                    etag=etag,
                    match_condition=MatchConditions.IfNotModified,
                )
        except (ResourceExistsError, ResourceModifiedError):
            return None
        except Exception as exc:
            if getattr(exc, "status_code", None) == 412:
                return None
            raise
        etag = meta.get("etag")
        with state.cond:
            state.slots[index] = _Slot(etag, token, now + self.slot_seconds, slot.not_before, calls)
            if slot.holder:
                state.released.discard(slot.holder)
        ticket = _SharedTicket(self, state, index, token, etag)
        with self._lock:
            self._held[token] = ticket
        self._ensure_worker()
        return ticket

    def _read(self, state: _ScopeState, *, force: bool, older_than: float = 0.0) -> None:
        """Read the scope's slots (one query); one reader at a time per scope."""
        with state.cond:
            if state.reading:
                # Another thread is reading: its answer is as fresh as ours would be.
                state.cond.wait_for(lambda: not state.reading, timeout=5.0)
                return
            if not force and self.clock() - state.read_at < older_than:
                return
            state.reading = True
        try:
            rows = self._call("query_entities", f"PartitionKey eq '{state.partition}'")
        finally:
            with state.cond:
                state.reading = False
        with state.cond:
            for entity in rows:
                row = str(entity.get("RowKey", ""))
                if row.startswith("slot-") and row[5:].isdigit():
                    state.slots[int(row[5:])] = _slot_of(entity)
            state.loaded = True
            state.read_at = self.clock()
            state.cond.notify_all()

    def _check_budget(
        self, state: _ScopeState, policy: MailboxPolicy, now: float, deadline: float
    ) -> None:
        """Stay under the request budget: near it, read the counts afresh; over it, wait for
        the oldest minute to leave the window (or raise MailboxBusy)."""
        budget = policy.requests_per_10_minutes
        if budget <= 0:
            return
        limit = int(budget * BUDGET_SHARE)
        for fresh in (False, True):
            with state.cond:
                used = sum(s.recent_calls(now) for s in state.slots.values())
                minutes = sorted(
                    int(m)
                    for s in state.slots.values()
                    for m, n in s.calls.items()
                    if n and int(m) > _minute(now) - BUDGET_BUCKETS
                )
            if used < limit:
                return
            if not fresh:
                self._read(state, force=True)
        oldest = minutes[0] if minutes else _minute(now)
        free_at = (oldest + BUDGET_BUCKETS) * BUCKET_SECONDS
        if free_at > deadline:
            raise paused_error(free_at - now)
        self.sleep(max(0.0, free_at - now))

    # --- pauses ---------------------------------------------------------------------------

    def pause(self, scope: Scope, seconds: float) -> None:
        until = self.clock() + seconds
        self.fallback.pause(scope, seconds)
        state = self._state(scope)
        with state.cond:
            known = max((s.not_before for s in state.slots.values()), default=0.0)
            for slot in state.slots.values():
                slot.not_before = max(slot.not_before, until)
        if until > known and not self._is_down():
            self._jobs.put(("pause", (state, until, max(len(state.slots), state.concurrent))))
            self._ensure_worker()

    # --- sending rate ---------------------------------------------------------------------

    def book_send(
        self,
        scope: Scope,
        policy: MailboxPolicy,
        tag: str,
        *,
        max_wait: float,
        book_ahead: bool,
        peek: bool = False,
    ) -> send_window.Decision:
        if policy.sends_per_minute <= 0:
            return send_window.Decision(self.clock(), None, None)
        if self._is_down():
            return self.fallback.book_send(
                scope, policy, tag, max_wait=max_wait, book_ahead=book_ahead, peek=peek
            )
        try:
            decision = self._book(scope, policy, tag[:12], max_wait, book_ahead, peek)
        except StorageDown as exc:
            self._went_down(exc)
            return self.fallback.book_send(
                scope, policy, tag, max_wait=max_wait, book_ahead=book_ahead, peek=peek
            )
        self._answered()
        return decision

    def _book(
        self,
        scope: Scope,
        policy: MailboxPolicy,
        tag: str,
        max_wait: float,
        book_ahead: bool,
        peek: bool,
    ) -> send_window.Decision:
        from azure.core import MatchConditions
        from azure.core.exceptions import (
            ResourceExistsError,
            ResourceModifiedError,
            ResourceNotFoundError,
        )
        from azure.data.tables import UpdateMode

        partition = _partition("s", scope.sender_key)
        with self._lock:
            cached = self._sends.get(partition)
        for _ in range(8):
            if cached is None:
                try:
                    entity = self._call("get_entity", partition, SENDS_ROW)
                    cached = (entity.metadata.get("etag"), _bookings(entity.get("times")))
                except ResourceNotFoundError:
                    cached = (None, [])
            etag, bookings = cached
            # Stored to the millisecond: decide on the same grid as the others will read.
            now = round(self.clock(), 3)
            decision = send_window.decide(
                bookings,
                now,
                policy.sends_per_minute,
                tag,
                max_wait=max_wait,
                book_ahead=book_ahead,
                peek=peek,
            )
            if decision.bookings is None:
                return decision
            entity = {
                "PartitionKey": partition,
                "RowKey": SENDS_ROW,
                "times": json.dumps(
                    [[round(t, 3), who] for t, who in decision.bookings], separators=(",", ":")
                ),
            }
            try:
                if etag is None:
                    meta = self._call("create_entity", entity)
                else:
                    current = etag
                    meta = self._call(
                        "update_entity",
                        entity,
                        mode=UpdateMode.REPLACE,
                        etag=current,
                        match_condition=MatchConditions.IfNotModified,
                    )
            except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
                cached = None  # another instance booked meanwhile: read and decide again
                continue
            with self._lock:
                self._sends[partition] = (meta.get("etag"), decision.bookings)
            return decision
        # Eight instances in a row booked before us: come back in a moment.
        return send_window.Decision(None, 1.0, None)

    # --- the background thread: releases, pauses, renewals --------------------------------

    def _ensure_worker(self) -> None:
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(
                    target=self._work, name="mailbox-limits", daemon=True
                )
                self._worker.start()

    def _work(self) -> None:
        while True:
            job: tuple[str, Any] = ("", ())
            with contextlib.suppress(queue.Empty):
                job = self._jobs.get(timeout=self.slot_seconds / 4)
            try:
                if job[0] == "release":
                    self._release(job[1])
                elif job[0] == "pause":
                    self._write_pause(*job[1])
                self._renew_due()
            except StorageDown as exc:
                self._went_down(exc)
            except Exception:
                log.exception("mailbox limits: background write failed")

    def _release(self, ticket: _SharedTicket) -> None:
        with self._lock:
            self._held.pop(ticket.token, None)
        self._update_held(ticket, {"holder": "", "expires": 0.0}, releasing=True)

    def _renew_due(self) -> None:
        now = self.clock()
        with self._lock:
            due = [
                t
                for t in self._held.values()
                if not t.done and now - t.written_at >= self.slot_seconds / 2
            ]
        for ticket in due:
            ticket.written_at = now
            if not self._update_held(ticket, {"expires": now + self.slot_seconds}):
                log.warning("mailbox limits: a slot held too long was taken over by another")

    def _update_held(self, ticket: _SharedTicket, values: dict, *, releasing: bool = False) -> bool:
        """Merge `values` into the slot while `ticket` still holds it (True if written)."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        state, row = ticket.state, f"slot-{ticket.index}"
        entity = {"PartitionKey": state.partition, "RowKey": row, **values}
        for _ in range(3):
            etag = ticket.etag
            try:
                meta = self._call(
                    "update_entity",
                    entity,
                    mode=UpdateMode.MERGE,
                    etag=etag,
                    match_condition=MatchConditions.IfNotModified,
                )
            except (ResourceModifiedError, ResourceNotFoundError):
                # A pause changed the slot, or another instance (or a request of ours) took it.
                try:
                    current = self._call("get_entity", state.partition, row)
                except ResourceNotFoundError:
                    return False
                slot = _slot_of(current)
                self._remember(state, ticket.index, slot)
                if slot.holder != ticket.token:
                    self._forget(state, ticket)
                    return False
                ticket.etag = slot.etag or etag
                continue
            with state.cond:
                slot = state.slots.get(ticket.index)
                if slot is not None and slot.holder == ticket.token:
                    slot.etag = meta.get("etag")
                    if releasing:
                        slot.holder, slot.expires = "", 0.0
                    else:
                        slot.expires = float(values.get("expires", slot.expires))
                ticket.etag = meta.get("etag") or ticket.etag
                if releasing:
                    state.released.discard(ticket.token)
                state.cond.notify_all()
            return True
        return False

    def _remember(self, state: _ScopeState, index: int, slot: _Slot) -> None:
        with state.cond:
            mine = state.slots.get(index)
            if mine is None or mine.holder != slot.holder or mine.etag != slot.etag:
                state.slots[index] = slot

    def _forget(self, state: _ScopeState, ticket: _SharedTicket) -> None:
        with state.cond:
            state.released.discard(ticket.token)
            state.cond.notify_all()

    def _write_pause(self, state: _ScopeState, until: float, count: int) -> None:
        from azure.data.tables import UpdateMode

        for index in range(count):
            entity = {
                "PartitionKey": state.partition,
                "RowKey": f"slot-{index}",
                "notBefore": until,
            }
            self._call("upsert_entity", entity, mode=UpdateMode.MERGE)


def _bookings(raw: Any) -> list[send_window.Booking]:
    try:
        items = json.loads(raw or "[]")
        return sorted((float(t), str(who)) for t, who in items)
    except (ValueError, TypeError):
        return []
