"""Per-mailbox limits around every Graph call: what they are, the per-instance kind, and the
gate one Graph client goes through.

Graph's Outlook limits hold per app and mailbox (4 concurrent requests, 10,000 requests in 10
minutes) and Exchange's per sending mailbox (30 messages a minute). `MailboxLimits` keeps them:
`InstanceLimits` within one process (the fallback, and the old behaviour with `pacing=False`),
`shared.graph.shared_limits.TableMailboxLimits` across every instance. `MailboxGate` binds them
to one connection and operation: `call()` holds a slot around one request (after the booked
departure, for a submission), `pace()` books a send before the draft is composed, `pause()`
passes on a server's Retry-After. Raises `MailboxBusy` (a `Throttled`) when there is no room
within the wait: queued work is re-scheduled with it.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import unquote, urlsplit

from shared.errors import MailboxBusy
from shared.graph import send_window

DEFAULT_LIMIT = 4
_MAILBOX = re.compile(r"/users/([^/?]+)")
# Graph actions that submit a message (Exchange's sending rate counts them).
SUBMISSIONS = frozenset({"send", "sendmail", "reply", "replyall", "forward"})
# A re-scheduled send comes back this long before its booked departure (the queue's polling,
# a visibility delay in whole seconds) and waits the rest in the process.
COME_BACK_EARLY_SECONDS = 3.0


def mailbox_of(url: str) -> str | None:
    """The mailbox a Graph URL acts on (case-folded), or None."""
    match = _MAILBOX.search(urlsplit(url).path)
    return unquote(match.group(1)).casefold() if match else None


def is_submission(method: str, url: str) -> bool:
    """True for a POST that hands a message to Exchange (`/send`, `/sendMail`, `/reply`, ...)."""
    if method.upper() != "POST":
        return False
    last = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    return last.casefold() in SUBMISSIONS


def spread(base: float, width: float) -> float:
    """`base` plus a random share of `width`: work that comes back does not all come at once."""
    return max(0.0, base) + random.uniform(0.0, max(0.0, width))  # noqa: S311 - jitter


@dataclass(frozen=True)
class MailboxPolicy:
    """The limits of one app+mailbox (a connection may lower or raise the app's defaults)."""

    concurrent: int = DEFAULT_LIMIT
    sends_per_minute: int = 30  # 0: no pacing
    requests_per_10_minutes: int = 10_000  # 0: not counted


@dataclass(frozen=True)
class Scope:
    """Whose limits: the tenant, the app (client id) and the mailbox (case-folded)."""

    tenant: str
    app: str
    mailbox: str

    @property
    def key(self) -> str:
        """Concurrency, request budget and pauses: per app and mailbox."""
        return f"{self.tenant}|{self.app}|{self.mailbox}"

    @property
    def sender_key(self) -> str:
        """The sending rate: per mailbox, whichever app submits."""
        return f"{self.tenant}|{self.mailbox}"


class Ticket(Protocol):
    def release(self) -> None: ...


class MailboxLimits(Protocol):
    """Where the limits are kept (one process, or shared by every instance)."""

    clock: Callable[[], float]  # epoch seconds (every instance's clock)
    sleep: Callable[[float], None]

    def enter(
        self, scope: Scope, policy: MailboxPolicy, *, max_wait: float, cleanup: bool = False
    ) -> Ticket:
        """Hold one of the scope's concurrency slots (after any pause, unless `cleanup`);
        raises MailboxBusy when none comes within `max_wait` seconds."""
        ...

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
        """The departure of the submission tagged `tag` (send_window.decide)."""
        ...

    def pause(self, scope: Scope, seconds: float) -> None:
        """Nobody calls the scope's mailbox before `seconds` from now (a server's Retry-After)."""
        ...


class _Released:
    def __init__(self, semaphore: threading.Semaphore) -> None:
        self._semaphore: threading.Semaphore | None = semaphore

    def release(self) -> None:
        if self._semaphore is not None:
            self._semaphore.release()
            self._semaphore = None


class InstanceLimits:
    """The limits within this process only: N slots per app+mailbox, pauses, and (with
    `pacing`) a send window of its own. With N instances the mailbox sees N times as much;
    this is the fallback while the shared store is unreachable (and `pacing=False` is how
    the app behaved before limits were shared)."""

    def __init__(
        self,
        *,
        pacing: bool = True,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.pacing = pacing
        self.clock = clock
        self.sleep = sleep
        self._lock = threading.Lock()
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._paused: dict[str, float] = {}
        self._sends: dict[str, list[send_window.Booking]] = {}

    def enter(
        self, scope: Scope, policy: MailboxPolicy, *, max_wait: float, cleanup: bool = False
    ) -> Ticket:
        deadline = self.clock() + max_wait
        with self._lock:
            until = 0.0 if cleanup else self._paused.get(scope.key, 0.0)
            slot = self._slots.get(scope.key)
            if slot is None:
                slot = self._slots[scope.key] = threading.BoundedSemaphore(policy.concurrent)
        now = self.clock()
        if until > now:
            if until > deadline:
                raise paused_error(until - now)
            self.sleep(until - now)
        if not slot.acquire(timeout=max(0.0, deadline - self.clock())):
            raise busy_error()
        return _Released(slot)

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
        now = self.clock()
        if not self.pacing or policy.sends_per_minute <= 0:
            return send_window.Decision(now, None, None)
        with self._lock:
            bookings = self._sends.get(scope.sender_key, [])
            decision = send_window.decide(
                bookings,
                now,
                policy.sends_per_minute,
                tag,
                max_wait=max_wait,
                book_ahead=book_ahead,
                peek=peek,
            )
            if decision.bookings is not None:
                self._sends[scope.sender_key] = decision.bookings
        return decision

    def pause(self, scope: Scope, seconds: float) -> None:
        with self._lock:
            until = self.clock() + seconds
            self._paused[scope.key] = max(self._paused.get(scope.key, 0.0), until)


def busy_error() -> MailboxBusy:
    """No slot within the wait: every instance is using the mailbox's concurrent requests."""
    return MailboxBusy(
        "The mailbox has no free request slot (its limit is shared by every instance); "
        "retry later.",
        retry_after=spread(2.0, 8.0),
    )


def paused_error(remaining: float) -> MailboxBusy:
    """Graph asked for a pause (Retry-After) that lasts longer than we wait."""
    return MailboxBusy(
        "Graph asked to pause calls to this mailbox; retry later.",
        retry_after=spread(remaining, min(30.0, max(1.0, remaining / 2))),
    )


def send_rate_error(retry_after: float, booked: bool) -> MailboxBusy:
    """The sending rate has no room soon: a booked departure is come back for exactly;
    without one, spread the comeback so waiting work does not return all at once."""
    wait = (
        max(1.0, retry_after - COME_BACK_EARLY_SECONDS)
        if booked
        else spread(retry_after, min(120.0, max(5.0, retry_after / 2)))
    )
    return MailboxBusy(
        "The sending mailbox is at its sending rate; the message leaves when the rate allows.",
        retry_after=wait,
    )


@dataclass
class MailboxGate:
    """The limits as one Graph client (one connection, one operation attempt) uses them."""

    limits: MailboxLimits
    tenant: str
    app: str
    policy: MailboxPolicy = field(default_factory=MailboxPolicy)
    # Names the operation's bookings (its id): a re-scheduled attempt finds its departure.
    tag: str = ""
    # Queued work can come back for a later departure; a caller waiting on HTTP cannot.
    book_ahead: bool = False
    max_wait: float = 10.0
    _departures: dict[str, float] = field(default_factory=dict)

    def clock(self) -> float:
        return self.limits.clock()

    def sleep(self, seconds: float) -> None:
        self.limits.sleep(seconds)

    def scope(self, mailbox: str) -> Scope:
        return Scope(self.tenant, self.app, mailbox.casefold())

    def pace(self, mailbox: str) -> None:
        """Check the sending rate before a message is composed in `mailbox`.

        Returns at once when it can leave within the wait (its submission books the moment,
        so a slow composition never makes a booking late); raises MailboxBusy when it cannot
        (queued work books a later departure and is re-scheduled to come back for it). Call
        it before the work a refusal would waste.
        """
        if self.policy.sends_per_minute > 0:
            self._book(mailbox, peek=True)

    def _book(self, mailbox: str, *, peek: bool = False) -> float:
        decision = self.limits.book_send(
            self.scope(mailbox),
            self.policy,
            self.tag or str(id(self)),
            max_wait=self.max_wait,
            book_ahead=self.book_ahead,
            peek=peek,
        )
        now = self.clock()
        if decision.at is None:
            raise send_rate_error(decision.retry_after or 1.0, booked=False)
        if decision.booked:
            self._departures[mailbox.casefold()] = decision.at
        if decision.at - now > self.max_wait:
            raise send_rate_error(decision.at - now, booked=True)
        return decision.at

    def _await_departure(self, mailbox: str) -> None:
        """Wait for the booked moment (booking now if `pace` did not, or it went by)."""
        at = self._departures.get(mailbox.casefold())
        if at is None or self.clock() > at + send_window.LATE_SECONDS:
            at = self._book(mailbox)
        wait = at - self.clock()
        if wait > 0:
            self.sleep(wait)

    @contextmanager
    def call(
        self, mailbox: str, *, submission: bool = False, cleanup: bool = False
    ) -> Iterator[None]:
        """Hold one of the mailbox's slots for one request; a submission leaves at its booked
        departure; a `cleanup` (deleting what the operation made) does not wait for a pause
        it would outlive. Raises MailboxBusy."""
        scope = self.scope(mailbox)
        pacing = submission and self.policy.sends_per_minute > 0
        for attempt in range(3):
            if pacing:
                self._await_departure(mailbox)
            ticket = self.limits.enter(scope, self.policy, max_wait=self.max_wait, cleanup=cleanup)
            at = self._departures.get(mailbox.casefold())
            if not pacing or attempt == 2 or at is None:
                break
            if self.clock() <= at + send_window.LATE_SECONDS:
                break
            # The slot came later than the departure: book again rather than crowd the window.
            ticket.release()
            self._departures.pop(mailbox.casefold(), None)
        try:
            yield
        finally:
            ticket.release()

    def pause(self, mailbox: str, seconds: float) -> None:
        """Graph answered 429 with Retry-After: pause the mailbox for everyone."""
        if seconds > 0:
            self.limits.pause(self.scope(mailbox), seconds)
