"""The one operation lifecycle: accept → claim → run (recording progress) → succeed | fail | park
| reschedule | poison, over an OperationStore and the work queues.

Queued work (`mode: async`, and every message) and inline work (`mode: auto`, the caller waits)
run through the same transitions; they differ only by the `Policy` passed in:

- QUEUED: an unexpected error goes back to the host (its message is retried after
  visibilityTimeout, and the attempt on the last dequeue marks the operation `poisoned`); the
  operation's log line is written here.
- INLINE: the caller is waiting, so anything that is not final (throttling, outages, a parked
  sign-in, an unexpected error) hands the operation to the queue and answers 202; the HTTP edge
  writes the log line.

Only the attempt that holds the claim writes the record while it runs (`claimedUntil`). An
attempt that outlived its claim finds another one took over (`ClaimLost`) and writes nothing:
the newer attempt owns the operation and has a message of its own. docs/architecture.md draws
the states; tests/unit/test_lifecycle.py runs every transition on the in-memory store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

import msgspec

from shared.errors import AppError, StorageUnavailable
from shared.graph.retry import backoff
from shared.kinds import KINDS, Kind
from shared.models import OperationRequest
from shared.operations.context import OperationContext, Progress
from shared.settings import Settings
from shared.timestamps import iso, now_utc, parse_iso
from shared.work.host import queue_host
from shared.work.idempotency import Accepted, accept
from shared.work.queueing import encode_envelope
from shared.work.record import Operation, error_record
from shared.work.states import Action, Decision, Status, check_transition, classify
from shared.work.store import OperationStore, StoreConflict

log = logging.getLogger(__name__)

# When another worker holds the operation, look again after this long at most.
BUSY_RECHECK_SECONDS = 30.0
# A claim that lost an ETag race: the winner runs it; look again shortly.
CLAIM_RACE_DELAY = 2.0
# A re-scheduled message becomes visible at next_attempt_at; clocks differ a little.
EARLY_TOLERANCE = timedelta(seconds=1)
# How often a conflicting save is retried while we hold the claim (a save that reached
# storage but whose answer was lost comes back as a conflict on the retry).
SAVE_TRIES = 3


class Policy(StrEnum):
    """How an attempt is driven: by a queue message, or inline while the caller waits."""

    QUEUED = "queued"
    INLINE = "inline"


class Step(StrEnum):
    """What one call into the lifecycle did (besides the statuses): for logs and tests."""

    RESCHEDULED = "reschedule"  # a new message runs the next attempt after the delay
    BUSY = "busy"  # another attempt holds the claim; a copy looks again when it ends
    EARLY = "early"  # a copy arrived before the re-scheduled attempt is due; it waits
    STALE_PARKED = "parked"  # a stale copy of a parked operation; the sign-in re-queues it
    CLAIM_LOST = "claim-lost"  # this attempt outlived its claim; the newer one owns the record
    HANDED_BACK = "retry"  # queued: back to the host, which retries the message


class ClaimLost(Exception):
    """Another attempt took the operation over (ours outlived its claim): write nothing more."""


class WorkQueues(Protocol):
    """The queues the lifecycle puts work on (shared.work.queueing.Queues in the app)."""

    def enqueue(self, kind: str, envelope: bytes, delay: float = 0.0) -> None:
        """Raises StorageUnavailable when the queue cannot take the message."""
        ...

    def to_poison(self, kind: str, body: bytes) -> None: ...


class ContextFactory(Protocol):
    """Builds an OperationContext (shared.runtime.Runtime.context)."""

    def __call__(
        self,
        connection_name: str,
        operation_id: str,
        user: str | None = None,
        *,
        progress: Progress | None = None,
    ) -> OperationContext: ...


# Runs one attempt of a kind: Kind.run in the app; tests substitute their own.
Runner = Callable[[Kind, Any, OperationContext], Any]


def run_kind(kind: Kind, request: OperationRequest, ctx: OperationContext) -> Any:
    return kind.run(request, ctx)


@dataclass(frozen=True)
class Limits:
    """The numbers the lifecycle works with (OPERATION_CLAIM_SECONDS, PARKED_TTL_HOURS, the
    host's maxDequeueCount)."""

    claim_seconds: float = 660.0
    parked_ttl: timedelta = timedelta(hours=72)
    max_dequeue_count: int = 5
    # Throttling is not failure, but an operation throttled for hours needs a human.
    max_attempts: int = 100

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            claim_seconds=settings.operation_claim_seconds,
            parked_ttl=timedelta(hours=settings.parked_ttl_hours),
            max_dequeue_count=queue_host(settings).max_dequeue_count,
        )


@dataclass(frozen=True)
class Claim:
    """Which attempt holds the operation: the record still shows these while it does."""

    attempts: int
    until: str | None


@dataclass
class Outcome:
    """How a call into the lifecycle ended: `step` is a Status or a Step."""

    step: str
    op: Operation | None
    result: Any = None
    error: BaseException | None = None
    request_ids: list[str] = field(default_factory=list)


class Lifecycle:
    """The state machine of every operation, over `store` and `queues`."""

    def __init__(
        self,
        store: OperationStore,
        queues: WorkQueues,
        context: ContextFactory,
        *,
        limits: Limits | None = None,
        on_final: Callable[[Operation], None] | None = None,
        on_parked: Callable[[Operation], None] | None = None,
        clock: Callable[[], datetime] = now_utc,
        runner: Runner = run_kind,
        kinds: dict[str, Kind] | None = None,
    ) -> None:
        self.store = store
        self.queues = queues
        self.context = context
        self.limits = limits or Limits()
        self.on_final = on_final
        # Told about every operation that parks (whether or not it has a callbackUrl): the
        # Runtime records the lost sign-in and tells the connection's notifyUrl.
        self.on_parked = on_parked
        self.clock = clock
        self.runner = runner
        self.kinds = kinds or KINDS

    # --- accept ----------------------------------------------------------------------------

    def accept(
        self,
        kind: str,
        operation_id: str,
        request_json: dict[str, Any],
        *,
        key: str | None,
        user: str | None = None,
        callback_url: str | None = None,
        policy: Policy = Policy.QUEUED,
    ) -> Accepted:
        """Record the operation (idempotently) and queue its message.

        INLINE queues a safety net instead: a message visible when the inline claim ends, so a
        crash during the inline attempt is resumed by a worker (after a normal end it finds the
        operation final and is dropped). Raises IdempotencyConflict, PayloadTooLarge and
        StorageUnavailable (the record is taken back when its message cannot be queued).
        """
        envelope = encode_envelope(operation_id, request_json)
        accepted = accept(
            self.store,
            kind=kind,
            operation_id=operation_id,
            request_json=request_json,
            envelope=envelope,
            key=key,
            user=user,
            callback_url=callback_url,
        )
        op = accepted.operation
        if not accepted.new:
            if accepted.enqueue:
                self.queues.enqueue(kind, op.envelope or envelope)
            return accepted
        delay = self.limits.claim_seconds if policy is Policy.INLINE else 0.0
        try:
            self.queues.enqueue(kind, envelope, delay=delay)
        except StorageUnavailable:
            # No message behind the record: take the record back so a retry starts clean.
            self.store.forget(op)
            raise
        return accepted

    # --- run -------------------------------------------------------------------------------

    def run_queued(
        self, op: Operation, load_request: Callable[[], Any], body: bytes, dequeue_count: int
    ) -> Outcome:
        """The attempt a queue message asks for (delivered `dequeue_count` times).

        Raises the attempt's error for Action.RETRY (the host retries the message, then
        poisons it); StorageUnavailable when the outcome cannot be recorded.
        """
        gate = self._gate(op, body)
        if gate is not None:
            return Outcome(gate, op)
        claim = self._claim(op)
        if claim is None:
            self.queues.enqueue(op.kind, body, delay=CLAIM_RACE_DELAY)
            return Outcome(Step.BUSY, op)
        return self._attempt(op, claim, load_request, Policy.QUEUED, dequeue_count, body)

    def run_inline(self, op: Operation, request: OperationRequest) -> Outcome:
        """The first attempt of a just-accepted `auto` operation, while the caller waits.

        Never raises for the operation's own errors (see Outcome.error); raises
        StorageUnavailable when the outcome cannot be recorded (the safety net resumes it).
        """
        claim = self._claim(op)
        if claim is None:
            return Outcome(Step.BUSY, op)
        envelope = op.envelope or b""
        return self._attempt(op, claim, lambda: request, Policy.INLINE, 0, envelope)

    # --- the steps -------------------------------------------------------------------------

    def _gate(self, op: Operation, body: bytes) -> str | None:
        """Why this message must not run an attempt now (None: it may)."""
        if op.terminal and op.status != Status.POISONED:
            # `poisoned` is not final for a message an operator moved back from -poison: it
            # runs again, in resume mode (attempts > 0).
            return f"already-{op.status}"
        if op.status == Status.PARKED:
            return Step.STALE_PARKED
        now = self.clock()
        held = parse_iso(op.claimed_until)
        if op.status == Status.RUNNING and held is not None and held > now:
            # Another attempt is on it (a duplicate delivery): look again once its claim ends.
            wait = min(BUSY_RECHECK_SECONDS, (held - now).total_seconds() + 1)
            self.queues.enqueue(op.kind, body, delay=wait)
            return Step.BUSY
        due = parse_iso(op.next_attempt_at)
        if op.status == Status.ACCEPTED and due is not None and due > now + EARLY_TOLERANCE:
            # A duplicate copy arriving before the Retry-After of a re-scheduled attempt.
            self.queues.enqueue(op.kind, body, delay=(due - now).total_seconds())
            return Step.EARLY
        return None

    def _claim(self, op: Operation) -> Claim | None:
        """Take the operation for one attempt (conditional save); None if someone else did."""
        now = self.clock()
        check_transition(op.status, Status.RUNNING)
        op.status = Status.RUNNING
        op.finished_at = op.poison_queue = None  # set when a poisoned operation runs again
        op.attempts += 1
        op.started_at = op.started_at or iso(now)
        op.claimed_until = iso(now + timedelta(seconds=self.limits.claim_seconds))
        op.next_attempt_at = None
        try:
            self.store.save(op)
        except StoreConflict:
            return None
        return Claim(op.attempts, op.claimed_until)

    def _attempt(
        self,
        op: Operation,
        claim: Claim,
        load_request: Callable[[], Any],
        policy: Policy,
        dequeue_count: int,
        envelope: bytes,
    ) -> Outcome:
        request_ids: list[str] = []

        def persist(steps: dict[str, Any]) -> None:
            previous, op.progress = op.progress, steps
            try:
                self._save_holding(op, claim)
            except BaseException:
                op.progress = previous  # not recorded: the record must not claim it later
                raise

        progress = Progress(op.progress, resume=op.attempts > 1, persist=persist)
        try:
            request = load_request()
            ctx = self.context(op.connection, op.operation_id, op.user, progress=progress)
            request_ids = getattr(getattr(ctx, "graph", None), "request_ids", request_ids)
            result = self.runner(self.kinds[op.kind], request, ctx)
        except ClaimLost:
            return self._claim_lost(op, request_ids)
        except Exception as exc:
            outcome = self._after_failure(op, claim, exc, policy, dequeue_count, envelope)
            outcome.request_ids = request_ids
            return outcome
        op.result = msgspec.to_builtins(result)
        outcome = self._end(op, claim, Status.SUCCEEDED, policy, request_ids)
        outcome.result = result
        return outcome

    def _after_failure(
        self,
        op: Operation,
        claim: Claim,
        exc: Exception,
        policy: Policy,
        dequeue_count: int,
        envelope: bytes,
    ) -> Outcome:
        decision = classify(exc, op.attempts)
        op.error = error_record(exc)
        if decision.action is Action.RETRY and policy is Policy.INLINE:
            # Nobody can retry an inline attempt but the queue: hand it over, with back-off.
            log.error("operation %s inline attempt failed", op.operation_id, exc_info=exc)
            decision = Decision(Action.RESCHEDULE, max(1.0, backoff(op.attempts)))
        if decision.action is Action.RESCHEDULE and op.attempts >= self.limits.max_attempts:
            decision = Decision(Action.FAIL)
            op.error.message = f"Gave up after {op.attempts} attempts."
        try:
            if decision.action is Action.FAIL:
                outcome = self._end(op, claim, Status.FAILED, policy, [])
            elif decision.action is Action.PARK:
                outcome = self._park(op, claim, exc, policy)
            elif decision.action is Action.RESCHEDULE:
                outcome = self._reschedule(op, claim, decision.delay, envelope)
            elif dequeue_count >= self.limits.max_dequeue_count:
                outcome = self._poison(op, claim, policy)
            else:
                outcome = self._hand_back(op, claim)
        except ClaimLost:
            return self._claim_lost(op, [])
        outcome.error = exc
        if decision.action is Action.RETRY:
            if isinstance(exc, AppError):
                log.warning("operation %s attempt %d: %s", op.operation_id, op.attempts, exc.code)
            else:
                log.error(
                    "operation %s attempt %d failed", op.operation_id, op.attempts, exc_info=exc
                )
            raise exc
        return outcome

    def _end(
        self, op: Operation, claim: Claim, status: Status, policy: Policy, request_ids: list[str]
    ) -> Outcome:
        """succeeded or failed: final; the envelope (mail content) goes."""
        self._move(op, status)
        op.finished_at = iso(self.clock())
        op.claimed_until = op.next_attempt_at = None
        op.envelope = None
        try:
            self._save_holding(op, claim)
        except ClaimLost:
            return self._claim_lost(op, request_ids)
        self._announce(op, policy, request_ids)
        return Outcome(status, op, request_ids=request_ids)

    def _park(self, op: Operation, claim: Claim, exc: Exception, policy: Policy) -> Outcome:
        """Wait for a sign-in: the hook (or the admin command) queues it again."""
        op.sign_in_url = getattr(exc, "sign_in_url", None)
        op.admin_command = getattr(exc, "admin_command", None)
        op.parked_until = iso(self.clock() + self.limits.parked_ttl)
        # The index entry first: a `parked` status nobody can find is stranded work. If this
        # raises, the attempt is not recorded and its message (or the safety net) comes back.
        self.store.index_parked(op)
        self._move(op, Status.PARKED)
        op.claimed_until = None
        self._save_holding(op, claim)
        self._announce(op, policy, [])
        if self.on_parked is not None:
            try:
                self.on_parked(op)
            except Exception:
                log.exception("on_parked of operation %s failed", op.operation_id)
        return Outcome(Status.PARKED, op)

    def _reschedule(self, op: Operation, claim: Claim, delay: float, envelope: bytes) -> Outcome:
        """A NEW message after `delay`: this one ends, and its dequeue count with it."""
        self._move(op, Status.ACCEPTED)
        op.claimed_until = None
        op.next_attempt_at = iso(self.clock() + timedelta(seconds=delay))
        self._save_holding(op, claim)
        self.queues.enqueue(op.kind, op.envelope or envelope, delay=delay)
        return Outcome(Step.RESCHEDULED, op)

    def _poison(self, op: Operation, claim: Claim, policy: Policy) -> Outcome:
        """The host moves the message to `<queue>-poison` after this attempt; the envelope
        stays, so an operator can move the message back to run it again."""
        self._move(op, Status.POISONED)
        op.poison_queue = self.kinds[op.kind].queue + "-poison"
        op.finished_at = iso(self.clock())
        op.claimed_until = None
        self._save_holding(op, claim)
        self._announce(op, policy, [])
        return Outcome(Status.POISONED, op)

    def _hand_back(self, op: Operation, claim: Claim) -> Outcome:
        """Queued, unexpected error: the host retries the same message after visibilityTimeout."""
        self._move(op, Status.ACCEPTED)
        op.claimed_until = None
        self._save_holding(op, claim)
        return Outcome(Step.HANDED_BACK, op)

    def _claim_lost(self, op: Operation, request_ids: list[str]) -> Outcome:
        log.warning(
            "operation %s attempt %d outlived its claim; the newer attempt owns it",
            op.operation_id,
            op.attempts,
        )
        return Outcome(Step.CLAIM_LOST, op, request_ids=request_ids)

    # --- recording -------------------------------------------------------------------------

    def _move(self, op: Operation, status: Status) -> None:
        check_transition(op.status, status)
        op.status = status

    def _save_holding(self, op: Operation, claim: Claim) -> None:
        """Save while holding `claim`. A conflict is retried only while the stored record still
        shows our claim (a save whose answer was lost conflicts on the retry); otherwise another
        attempt took over: ClaimLost. Raises StorageUnavailable when storage fails."""
        for _ in range(SAVE_TRIES):
            try:
                self.store.save(op)
                return
            except StoreConflict:
                current = self.store.get(op.operation_id)
                if current is None or not _holds(current, claim):
                    raise ClaimLost(op.operation_id) from None
                op.etag = current.etag
        raise StorageUnavailable("The operation's record kept changing; retry later.")

    def _announce(self, op: Operation, policy: Policy, request_ids: list[str]) -> None:
        """The log line (queued; the HTTP edge writes the inline one) and the callback."""
        if policy is Policy.QUEUED:
            _log_end(op, request_ids, self.clock())
        if self.on_final is None or not op.callback_url:
            return
        try:
            self.on_final(op)
        except Exception:
            log.exception("callback of operation %s failed", op.operation_id)


def _holds(current: Operation, claim: Claim) -> bool:
    """True while the stored record is still the one `claim` took."""
    return (
        current.status == Status.RUNNING
        and current.attempts == claim.attempts
        and current.claimed_until == claim.until
    )


def _log_end(op: Operation, request_ids: list[str], now: datetime) -> None:
    """The operation's one structured line (the alert counts failures from it)."""
    from shared.oplog import OperationRecord, emit

    record = OperationRecord(op.operation_id, op.kind, connection=op.connection)
    record.address("user", op.user)  # masked: the workbook's parked work per user
    record.request_ids = list(request_ids)
    record.fields.update(mode="queue", status=str(op.status), attempts=op.attempts)
    code = op.error.code if op.error is not None else None
    outcome = Status.SUCCEEDED.value if op.status == Status.SUCCEEDED else (code or op.status)
    started = parse_iso(op.started_at)
    duration = (now - started).total_seconds() * 1000 if started else 0.0
    emit(record, str(outcome), duration)
