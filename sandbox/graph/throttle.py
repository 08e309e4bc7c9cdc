"""Graph's Outlook throttles per app and mailbox: concurrent requests, a 10-minute request
budget, an upload volume per 5 minutes, and Exchange's message submission rate; and what the
throttles saw (`stats`: the most concurrent requests per app+mailbox, refused ones included,
and the most submissions per mailbox in any sending window), for tests and benchmarks.

throttling-limits.md (Outlook service limits, "evaluated for each app ID and mailbox
combination"): 10,000 API requests in a 10-minute period, four concurrent requests, 150 MB
upload (PATCH, POST, PUT) in a 5-minute period. Exchange Online's sending limit is 30 messages
a minute.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sandbox.graph.errors import throttled

WINDOW_SECONDS = 600.0
UPLOAD_WINDOW_SECONDS = 300.0
SEND_WINDOW_SECONDS = 60.0
DEFAULT_UPLOAD_BYTES = 150 * 1024 * 1024


class Throttle:
    """Counts in memory (a restart forgives everything, as a fresh Exchange budget would).

    `limits` is read on every call so a change through the control API applies at once.
    `clock` is injectable so the budget logic can be unit-tested without sleeping.
    """

    def __init__(
        self,
        limits: Callable[[], dict[str, Any]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = limits
        self._clock = clock
        self._lock = threading.Lock()
        self._active: dict[tuple, int] = {}
        self._calls: dict[tuple, deque[float]] = {}
        self._uploads: dict[tuple, deque[tuple[float, int]]] = {}
        self._sends: dict[str, deque[float]] = {}
        self._stats = _Stats()

    def reset(self) -> None:
        with self._lock:
            self._active.clear()
            self._calls.clear()
            self._uploads.clear()
            self._sends.clear()
            self._stats = _Stats()

    def reset_stats(self) -> None:
        """Forget what the throttles saw (the limits' own counts stay)."""
        with self._lock:
            self._stats = _Stats()

    def stats(self) -> dict[str, Any]:
        """What the throttles saw since the last reset: per app+mailbox key the most requests
        in flight at once (refused ones counted: it is what the client tried) and the refusals
        by limit; per sending mailbox the most submissions (accepted, held or refused) in any
        sending window, and the refusals."""
        with self._lock:
            return self._stats.render()

    @contextmanager
    def slot(self, key: tuple) -> Iterator[None]:
        """Hold one of the key's concurrent slots; raises GraphError 429 when over a limit."""
        limits = self._limits()
        concurrent = int(limits.get("concurrentRequestsPerMailbox") or 0)
        budget = int(limits.get("requestsPer10Minutes") or 0)
        now = self._clock()
        with self._lock:
            stats = self._stats
            stats.arrive(key)
            try:
                if concurrent and self._active.get(key, 0) >= concurrent:
                    stats.refuse(key, "MailboxConcurrency")
                    raise throttled(1, "MailboxConcurrency")
                calls = self._calls.setdefault(key, deque())
                while calls and calls[0] <= now - WINDOW_SECONDS:
                    calls.popleft()
                if budget and len(calls) >= budget:
                    wait = math.ceil(calls[0] + WINDOW_SECONDS - now)
                    stats.refuse(key, "resource")
                    raise throttled(max(1, wait), "resource")
            except BaseException:
                stats.leave(key)
                raise
            calls.append(now)
            self._active[key] = self._active.get(key, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                stats.leave(key)
                left = self._active.get(key, 1) - 1
                if left:
                    self._active[key] = left
                else:
                    self._active.pop(key, None)

    def count_upload(self, key: tuple, size: int) -> None:
        """Record `size` uploaded bytes (a PATCH, POST or PUT body) for the app and mailbox;
        raises GraphError 429 when they would go over `uploadBytesPer5Minutes`."""
        budget = self._limits().get("uploadBytesPer5Minutes", DEFAULT_UPLOAD_BYTES)
        if not budget or size <= 0:
            return
        now = self._clock()
        with self._lock:
            window = self._uploads.setdefault(key, deque())
            while window and window[0][0] <= now - UPLOAD_WINDOW_SECONDS:
                window.popleft()
            used = sum(n for _, n in window)
            if used + size > int(budget):
                # When enough of the window has passed for this body to fit.
                freed, wait = 0, UPLOAD_WINDOW_SECONDS
                for at, n in window:
                    freed += n
                    if used - freed + size <= int(budget):
                        wait = at + UPLOAD_WINDOW_SECONDS - now
                        break
                raise throttled(max(1, math.ceil(wait)), "UploadVolume")
            window.append((now, size))

    def count_send(self, mailbox: str) -> None:
        """Record one message sent from `mailbox`; raises GraphError 429 over the send rate."""
        rate = self._limits().get("sendRatePerMinute")
        if not rate:
            return
        now = self._clock()
        with self._lock:
            self._stats.submit(mailbox.lower(), now)
            sends = self._sends.setdefault(mailbox.lower(), deque())
            while sends and sends[0] <= now - SEND_WINDOW_SECONDS:
                sends.popleft()
            if len(sends) >= int(rate):
                wait = math.ceil(sends[0] + SEND_WINDOW_SECONDS - now)
                self._stats.refuse_send(mailbox.lower())
                raise throttled(max(1, wait), "MessageSubmissionRate")
            sends.append(now)

    def reserve_send(self, mailbox: str) -> float:
        """Book the earliest departure of a message from `mailbox` within the send rate
        (`sendRateMode: hold`); returns the seconds it waits in the Outbox (0: at once)."""
        rate = self._limits().get("sendRatePerMinute")
        if not rate:
            return 0.0
        now = self._clock()
        with self._lock:
            self._stats.submit(mailbox.lower(), now)
            sends = self._sends.setdefault(mailbox.lower(), deque())
            while sends and sends[0] <= now - SEND_WINDOW_SECONDS:
                sends.popleft()
            departure = now
            if len(sends) >= int(rate):
                departure = max(now, sends[-int(rate)] + SEND_WINDOW_SECONDS)
                self._stats.hold(mailbox.lower())
            sends.append(departure)
            return departure - now


class _Stats:
    """What the throttles saw (the caller holds the throttle's lock)."""

    def __init__(self) -> None:
        self.in_flight: Counter[tuple] = Counter()
        self.peak: Counter[tuple] = Counter()
        self.requests: Counter[tuple] = Counter()
        self.refused: dict[tuple, Counter[str]] = {}
        self.submissions: dict[str, deque[float]] = {}
        self.peak_sends: Counter[str] = Counter()
        self.total_sends: Counter[str] = Counter()
        self.refused_sends: Counter[str] = Counter()
        self.held_sends: Counter[str] = Counter()

    def arrive(self, key: tuple) -> None:
        self.requests[key] += 1
        self.in_flight[key] += 1
        self.peak[key] = max(self.peak[key], self.in_flight[key])

    def leave(self, key: tuple) -> None:
        self.in_flight[key] -= 1

    def refuse(self, key: tuple, limit: str) -> None:
        self.refused.setdefault(key, Counter())[limit] += 1

    def submit(self, mailbox: str, now: float) -> None:
        window = self.submissions.setdefault(mailbox, deque())
        while window and window[0] <= now - SEND_WINDOW_SECONDS:
            window.popleft()
        window.append(now)
        self.total_sends[mailbox] += 1
        self.peak_sends[mailbox] = max(self.peak_sends[mailbox], len(window))

    def refuse_send(self, mailbox: str) -> None:
        self.refused_sends[mailbox] += 1

    def hold(self, mailbox: str) -> None:
        self.held_sends[mailbox] += 1

    def render(self) -> dict[str, Any]:
        return {
            "mailboxes": [
                {
                    "tenantId": key[0],
                    "appId": key[1],
                    "mailboxId": key[2],
                    "requests": self.requests[key],
                    "peakConcurrent": self.peak[key],
                    "refused": dict(self.refused.get(key, {})),
                }
                for key in self.requests
            ],
            "senders": [
                {
                    "mailbox": mailbox,
                    "submissions": self.total_sends[mailbox],
                    "peakPerWindow": self.peak_sends[mailbox],
                    "refused": self.refused_sends[mailbox],
                    "held": self.held_sends[mailbox],
                }
                for mailbox in self.total_sends
            ],
            "sendWindowSeconds": SEND_WINDOW_SECONDS,
        }
