"""A mailbox's send-rate window as a list of booked departures (pure: no I/O, no clock).

Exchange lets a mailbox submit `rate` messages in any sliding minute. Every instance books the
moment its message may be submitted in one shared list; a booking is kept while it is inside
the window (or ahead of it), so no `span` seconds (the minute plus a margin for the way from
the booking to Exchange) ever hold more than `rate` bookings. A message that cannot leave soon
books a later departure and is re-scheduled to come back for it (`tag` names its operation).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

# Exchange Online's window, and the margin between a booking and the request reaching Exchange
# (the submission waits for its booked moment, and books again when it is later than half of
# this: see Decision.late).
WINDOW_SECONDS = 60.0
MARGIN_SECONDS = 2.0
SPAN_SECONDS = WINDOW_SECONDS + MARGIN_SECONDS
LATE_SECONDS = MARGIN_SECONDS / 2
# At most this many windows of bookings ahead: the list stays small (one Table property), and
# work beyond it comes back when there is room to book.
HORIZON_WINDOWS = 3

Booking = tuple[float, str]


@dataclass(frozen=True)
class Decision:
    """What a submission does: leave at `at` (waiting until then), or come back after
    `retry_after` seconds; `bookings` is the new list when it changed (None: unchanged);
    `booked`: `at` is a booking of its own (False: only a look, `peek`)."""

    at: float | None
    retry_after: float | None
    bookings: list[Booking] | None
    booked: bool = True


def prune(bookings: list[Booking], now: float, span: float = SPAN_SECONDS) -> list[Booking]:
    """The bookings still inside the window or ahead of it, sorted by time."""
    return sorted(b for b in bookings if b[0] > now - span)


def fits(times: list[float], at: float, rate: int, span: float = SPAN_SECONDS) -> bool:
    """True when one more departure at `at` keeps every `span`-long window at ≤ `rate`.

    `times` is sorted. Only the windows holding `at` can go over: each of them is the run of
    rate + 1 consecutive departures (with `at` among them) that must stretch over `span`.
    """
    merged = list(times)
    p = bisect.bisect_right(merged, at)
    merged.insert(p, at)
    for k in range(max(0, p - rate), min(p, len(merged) - 1 - rate) + 1):
        if merged[k + rate] - merged[k] < span:
            return False
    return True


def earliest(times: list[float], now: float, rate: int, span: float = SPAN_SECONDS) -> float:
    """The first moment ≥ `now` a departure fits (`times` sorted; rate ≥ 1)."""
    candidates = sorted({now, *(t + span for t in times if t + span > now)})
    for at in candidates:
        if fits(times, at, rate, span):
            return at
    return max(now, times[-1] + span) if times else now


def decide(
    bookings: list[Booking],
    now: float,
    rate: int,
    tag: str,
    *,
    max_wait: float,
    book_ahead: bool,
    peek: bool = False,
    span: float = SPAN_SECONDS,
) -> Decision:
    """When the submission tagged `tag` may leave (pure).

    Its own booking is used while it is not late; a late one is given up and booked again. A
    departure within `max_wait` is booked and waited for (with `peek` it is only looked at:
    the submission itself books it). Later ones are booked when the work can come back for
    them (`book_ahead`: queued work, re-scheduled to the moment) and are within the horizon;
    otherwise nothing is booked and the caller comes back after `retry_after` (a sync
    caller, or no room within the horizon).
    """
    current = prune(bookings, now, span)
    mine = [b for b in current if b[1] == tag]
    if mine and now <= mine[0][0] + LATE_SECONDS:
        return Decision(mine[0][0], None, None if len(current) == len(bookings) else current)
    others = [b for b in current if b[1] != tag]
    times = [b[0] for b in others]
    at = earliest(times, now, rate, span)
    horizon = now + HORIZON_WINDOWS * span
    if peek and at - now <= max_wait:
        changed = others if len(others) != len(bookings) else None
        return Decision(at, None, changed, booked=False)
    if at - now <= max_wait or (book_ahead and at <= horizon):
        return Decision(at, None, sorted([*others, (at, tag)]))
    # Nothing booked: a late booking of ours is given up, and the caller comes back.
    return Decision(None, at - now, others if len(others) != len(bookings) else None)
