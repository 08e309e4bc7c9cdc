"""The lifecycle's vocabulary: what may follow what among the statuses (shared.models.Status),
and what to do after a failed attempt (`Action`, `classify`, pure).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shared.errors import (
    AppError,
    GraphOutcomeUnknown,
    GraphUnavailable,
    Pending,
    ReauthRequired,
    SecretsUnavailable,
    SendUnconfirmed,
    StorageUnavailable,
    Throttled,
    error_body,
)
from shared.graph.retry import backoff
from shared.models import Status

__all__ = ["TERMINAL", "TRANSITIONS", "Action", "Decision", "Status", "classify", "error_info"]


# Final: no message will run these again (a poisoned one only if an operator moves it back).
TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.POISONED})

# Every transition the lifecycle, parking and recovery may make (each goes through
# check_transition; docs/architecture.md draws this table).
TRANSITIONS: dict[Status, frozenset[Status]] = {
    # claim; re-queued by recovery; abandoned by recovery (no envelope)
    Status.ACCEPTED: frozenset({Status.RUNNING, Status.ACCEPTED, Status.FAILED}),
    Status.RUNNING: frozenset(
        {
            Status.RUNNING,  # a new attempt takes over an expired claim
            Status.SUCCEEDED,
            Status.FAILED,
            Status.PARKED,
            Status.ACCEPTED,  # rescheduled, handed back to the host, or recovered
            Status.POISONED,
        }
    ),
    Status.PARKED: frozenset({Status.ACCEPTED, Status.FAILED}),  # sign-in; reauth_expired
    Status.POISONED: frozenset({Status.RUNNING}),  # its message was moved back
    Status.SUCCEEDED: frozenset(),
    Status.FAILED: frozenset(),
}


class InvalidTransition(RuntimeError):
    """A bug: code tried a transition the lifecycle does not have."""


def check_transition(current: str, to: Status) -> None:
    """Raise InvalidTransition unless `current` → `to` is in TRANSITIONS."""
    if to not in TRANSITIONS[Status(current)]:
        raise InvalidTransition(f"{current} → {to} is not a lifecycle transition")


class Action(StrEnum):
    """What follows a failed attempt."""

    FAIL = "fail"  # permanent: end `failed` now
    RESCHEDULE = "reschedule"  # a NEW message after the delay (never counts towards poison)
    PARK = "park"  # wait for a sign-in
    RETRY = "retry"  # unexpected: back to the host (queued) and its dequeue count


@dataclass(frozen=True)
class Decision:
    """What to do after an attempt failed: `action` and, for RESCHEDULE, the delay."""

    action: Action
    delay: float = 0.0


def classify(exc: BaseException, attempts: int = 1) -> Decision:
    """The decision for an attempt that raised `exc` (pure)."""
    if isinstance(exc, ReauthRequired):
        return Decision(Action.PARK)
    if isinstance(exc, SendUnconfirmed):
        # Sending again could send twice: a human checks the Sent Items.
        return Decision(Action.FAIL)
    if isinstance(
        exc, Throttled | GraphUnavailable | SecretsUnavailable | StorageUnavailable | Pending
    ):
        # Never earlier than Graph asked for: an early retry only earns another 429.
        wait = exc.retry_after if exc.retry_after is not None else backoff(attempts)
        return Decision(Action.RESCHEDULE, max(1.0, float(math.ceil(wait))))
    if isinstance(exc, GraphOutcomeUnknown):
        # The next attempt resumes: it looks at what the earlier one left before acting again.
        return Decision(Action.RESCHEDULE, max(1.0, backoff(attempts)))
    if isinstance(exc, AppError) and 400 <= exc.status < 500:
        return Decision(Action.FAIL)
    if isinstance(exc, AppError) and exc.code in {"auth_failed", "not_implemented"}:
        # The connection itself is misconfigured; repeating the call cannot fix it.
        return Decision(Action.FAIL)
    return Decision(Action.RETRY)


def error_info(exc: BaseException) -> dict[str, Any]:
    """The `error` recorded on the operation: code, message, Graph status/code/request-id."""
    if not isinstance(exc, AppError):
        return {"code": "internal_error", "message": "Internal error; see the logs."}
    inner = error_body(exc)["error"]
    inner.pop("operationId", None)
    return inner
