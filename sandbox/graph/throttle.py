"""Graph's per app+mailbox throttles: concurrent requests, a 10-minute budget and a send rate."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sandbox.graph.errors import throttled

WINDOW_SECONDS = 600.0
SEND_WINDOW_SECONDS = 60.0


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
        self._sends: dict[str, deque[float]] = {}

    def reset(self) -> None:
        with self._lock:
            self._active.clear()
            self._calls.clear()
            self._sends.clear()

    @contextmanager
    def slot(self, key: tuple) -> Iterator[None]:
        """Hold one of the key's concurrent slots; raises GraphError 429 when over a limit."""
        limits = self._limits()
        concurrent = int(limits.get("concurrentRequestsPerMailbox") or 0)
        budget = int(limits.get("requestsPer10Minutes") or 0)
        now = self._clock()
        with self._lock:
            if concurrent and self._active.get(key, 0) >= concurrent:
                raise throttled(1, "MailboxConcurrency")
            calls = self._calls.setdefault(key, deque())
            while calls and calls[0] <= now - WINDOW_SECONDS:
                calls.popleft()
            if budget and len(calls) >= budget:
                wait = math.ceil(calls[0] + WINDOW_SECONDS - now)
                raise throttled(max(1, wait), "resource")
            calls.append(now)
            self._active[key] = self._active.get(key, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._active.get(key, 1) - 1
                if left:
                    self._active[key] = left
                else:
                    self._active.pop(key, None)

    def count_send(self, mailbox: str) -> None:
        """Record one message sent from `mailbox`; raises GraphError 429 over the send rate."""
        rate = self._limits().get("sendRatePerMinute")
        if not rate:
            return
        now = self._clock()
        with self._lock:
            sends = self._sends.setdefault(mailbox.lower(), deque())
            while sends and sends[0] <= now - SEND_WINDOW_SECONDS:
                sends.popleft()
            if len(sends) >= int(rate):
                wait = math.ceil(sends[0] + SEND_WINDOW_SECONDS - now)
                raise throttled(max(1, wait), "MessageSubmissionRate")
            sends.append(now)
