"""When to retry a throttled or unavailable call: Retry-After parsing and a bounded wait budget."""

from __future__ import annotations

import email.utils
import time

RETRY_STATUSES = frozenset({429, 503, 504})
MAX_ATTEMPTS = 8
_BACKOFF_START = 0.5
_BACKOFF_CAP = 8.0


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if absent."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def backoff(attempt: int) -> float:
    """Exponential back-off for attempt 0, 1, 2, ... when the server gave no Retry-After."""
    return min(_BACKOFF_CAP, _BACKOFF_START * (2**attempt))


def maybe_processed(status: int, retry_after: float | None) -> bool:
    """True when an error answer to a non-idempotent call leaves its effect unknown (pure).

    429 and 503 with Retry-After are Graph's "not processed, come back later"; a gateway
    error (502, 504) or a 503 without Retry-After may come from a proxy after the backend
    already acted, so repeating the call could act twice.
    """
    if status in (502, 504):
        return True
    return status == 503 and retry_after is None


def next_delay(
    attempt: int,
    retry_after: float | None,
    elapsed: float,
    budget: float,
    *,
    attempt_cost: float = 0.0,
) -> float | None:
    """How long to wait before attempt `attempt + 1`, or None when the budget is spent.

    Graph's Retry-After is honoured exactly: retrying earlier only earns another 429. When the
    wait would end past `budget` seconds since the first attempt we stop, and the caller gets
    the error with Retry-After so it (or the queue) can come back later. `attempt_cost` (how
    long the last request took) counts too: the next attempt will likely take as long.
    """
    if attempt + 1 >= MAX_ATTEMPTS:
        return None
    delay = retry_after if retry_after is not None else backoff(attempt)
    if elapsed + delay + max(0.0, attempt_cost) > budget:
        return None
    return delay
