"""Process one queue message: claim its operation, run it, and record how it ended.

The envelope is `{"v": 1, "operationId", "request"}`. What happens on an error depends on
`classify` (pure, unit-tested):

- permanent (validation, sender_not_allowed, send_as_denied, not found, ...) → `failed` at once;
- throttled / unavailable (Graph, Entra ID, Key Vault, storage) or an unknown outcome → a NEW
  message visible after ≥ Retry-After, so it does not count towards maxDequeueCount;
- reauth_required → `parked` until the connection/user signs in again (shared/work/parking.py);
- anything else (a Graph 500, an attachment server down, a bug) → raised, so the host retries
  after visibilityTimeout; on the last dequeue the status becomes `poisoned` first.

An attempt after one that may have acted (attempts > 1) runs in resume mode: send looks for the
operation id on a message in the `from` mailbox before creating anything (exactly-once), and
the operation records `sendIssuedAt` before `/send` so a resume waits for the Sent Items copy
instead of sending again. A `poisoned` operation whose message an operator moves back to the
queue runs again, in resume mode. Every operation that ends (succeeded, failed, parked,
poisoned) writes the same one-line JSON record as the HTTP path (shared/oplog.py).
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from shared.errors import (
    AppError,
    GraphOutcomeUnknown,
    GraphUnavailable,
    ReauthRequired,
    SecretsUnavailable,
    SendUnconfirmed,
    StorageUnavailable,
    Throttled,
    error_body,
)
from shared.graph.retry import backoff
from shared.work.queueing import POISON_SUFFIX, QUEUE_FOR, Queues, decode_envelope
from shared.work.store import (
    ACCEPTED,
    FAILED,
    PARKED,
    POISONED,
    RUNNING,
    SUCCEEDED,
    Operation,
    OperationStore,
    StoreConflict,
    iso,
    now_utc,
    parse_iso,
)

log = logging.getLogger(__name__)

PERMANENT = "fail"
RESCHEDULE = "reschedule"
PARK = "park"
RETRY = "retry"
# Throttling is not failure, but an operation that is throttled for hours needs a human.
MAX_ATTEMPTS = 100
# When another worker holds the operation, look again after this long at most.
BUSY_RECHECK_SECONDS = 30.0
# A re-scheduled message becomes visible at next_attempt_at; clocks differ a little.
EARLY_TOLERANCE = timedelta(seconds=1)


@dataclass(frozen=True)
class Decision:
    """What to do after an attempt failed: `action` and, for RESCHEDULE, the delay."""

    action: str
    delay: float = 0.0


def classify(exc: BaseException, attempts: int = 1) -> Decision:
    """The decision for an attempt that raised `exc` (pure)."""
    if isinstance(exc, ReauthRequired):
        return Decision(PARK)
    if isinstance(exc, SendUnconfirmed):
        # Sending again could send twice: a human checks the Sent Items.
        return Decision(PERMANENT)
    if isinstance(exc, Throttled | GraphUnavailable | SecretsUnavailable | StorageUnavailable):
        # Never earlier than Graph asked for: an early retry only earns another 429.
        wait = exc.retry_after if exc.retry_after is not None else backoff(attempts)
        return Decision(RESCHEDULE, max(1.0, float(math.ceil(wait))))
    if isinstance(exc, GraphOutcomeUnknown):
        # The next attempt resumes: it looks for the operation id before acting again.
        return Decision(RESCHEDULE, max(1.0, backoff(attempts)))
    if isinstance(exc, AppError) and 400 <= exc.status < 500:
        return Decision(PERMANENT)
    if isinstance(exc, AppError) and exc.code in {"auth_failed", "not_implemented"}:
        # The connection itself is misconfigured; repeating the call cannot fix it.
        return Decision(PERMANENT)
    return Decision(RETRY)


def error_info(exc: BaseException) -> dict[str, Any]:
    """The `error` recorded on the operation: code, message, Graph status/code/request-id."""
    if not isinstance(exc, AppError):
        return {"code": "internal_error", "message": "Internal error; see the logs."}
    inner = error_body(exc)["error"]
    inner.pop("operationId", None)
    return inner


# The host's own default and the env override it applies over host.json (app settings win).
DEFAULT_MAX_DEQUEUE_COUNT = 5
MAX_DEQUEUE_OVERRIDE = "AzureFunctionsJobHost__extensions__queues__maxDequeueCount"
# Not resolved: a symlinked app root keeps its host.json.
_APP_ROOT = Path(__file__).parent.parent.parent


def host_max_dequeue_count(root: Path | None = None, env: dict[str, str] | None = None) -> int:
    """The maxDequeueCount the Functions host uses: the env override, else host.json's
    `extensions.queues.maxDequeueCount`, else 5. The app must agree with the host, or it marks
    an operation `poisoned` while its message is still being retried (or never)."""
    env = dict(os.environ) if env is None else env
    override = env.get(MAX_DEQUEUE_OVERRIDE, "").strip()
    if override:
        try:
            return max(1, int(override))
        except ValueError:
            log.warning("%s is not a number; using host.json", MAX_DEQUEUE_OVERRIDE)
    base = root or Path(env.get("AzureWebJobsScriptRoot") or _APP_ROOT)
    try:
        config = json.loads((base / "host.json").read_text(encoding="utf-8"))
        value = config.get("extensions", {}).get("queues", {}).get("maxDequeueCount")
        return max(1, int(value)) if value is not None else DEFAULT_MAX_DEQUEUE_COUNT
    except (OSError, ValueError, TypeError, AttributeError):
        return DEFAULT_MAX_DEQUEUE_COUNT


def valid_operation_id(value: str) -> bool:
    """Operation ids are UUIDs (the HTTP edge makes them); anything else is not ours."""
    try:
        uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return False
    return len(value) <= 64


class MessageRejected(Exception):
    """The queue message itself is unusable (not an envelope); it goes to the poison queue."""


OperationRunner = Callable[[str, Any, Any, bool], Any]
ContextFactory = Callable[[str, str, str | None], Any]


def default_runner(kind: str, request: Any, ctx: Any, resume: bool) -> Any:
    """Run operation `kind`; `resume` makes send and draft look for an earlier result first."""
    from shared import operations
    from shared.operations.send import find_by_operation_id

    if kind == "send":
        return operations.send(request, ctx, resume=resume)
    if kind == "draft" and resume:
        # An earlier attempt's draft may be half-built (attachments are added after the
        # create), so it is removed and the draft made again: a draft is never sent by us.
        from shared.operations.compose import default_sender, delete_quietly

        for found in find_by_operation_id(ctx, default_sender(request, ctx)):
            if found.get("isDraft", True):
                delete_quietly(ctx, request.from_, found["id"])
    return getattr(operations, kind)(request, ctx)


def request_model(kind: str) -> type:
    from shared.models import DraftRequest, MoveRequest, SendRequest

    return {"send": SendRequest, "move": MoveRequest, "draft": DraftRequest}[kind]


class Processor:
    """Runs queue messages of one function app instance."""

    def __init__(
        self,
        store: OperationStore,
        queues: Queues,
        context: ContextFactory,
        *,
        max_dequeue_count: int = 5,
        claim_seconds: float = 660.0,
        parked_ttl: timedelta = timedelta(hours=72),
        runner: OperationRunner = default_runner,
        on_final: Callable[[Operation], None] | None = None,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self.store = store
        self.queues = queues
        self.context = context
        self.max_dequeue_count = max_dequeue_count
        self.claim_seconds = claim_seconds
        self.parked_ttl = parked_ttl
        self.runner = runner
        self.on_final = on_final
        self.clock = clock
        # Per thread: the worker may run several messages of this Processor at once.
        self._local = threading.local()

    # --- entry point ---------------------------------------------------------------------

    def process(self, kind: str, body: bytes, dequeue_count: int) -> str:
        """Handle one message of queue `kind`; returns what happened (for logs and tests).

        Raises only for RETRY decisions (the host then retries, then poisons).
        """
        try:
            envelope = decode_envelope(body)
        except (msgspec.DecodeError, msgspec.ValidationError):
            self._reject(kind, body)
            return "rejected"
        if not valid_operation_id(envelope.operationId):
            self._reject(kind, body)
            return "rejected"
        op = self.store.get(envelope.operationId)
        if op is None:
            # DocuFlow put the message on the queue itself: accept it now.
            op = self._accept_dropped(kind, envelope)
            if op is None:
                return "duplicate"
        if op.terminal and op.status != POISONED:
            # `poisoned` is not final for a message an operator moved back from -poison: it
            # runs again, in resume mode (attempts > 0).
            return "already-" + op.status
        if op.status == PARKED:
            return "parked"  # a stale copy; the sign-in hook queues the operation again
        now = self.clock()
        held = parse_iso(op.claimed_until)
        if op.status == RUNNING and held is not None and held > now:
            # Another worker is on it (a duplicate delivery): look again once its claim ends.
            wait = min(BUSY_RECHECK_SECONDS, (held - now).total_seconds() + 1)
            self.queues.enqueue(kind, body, delay=wait)
            return "busy"
        due = parse_iso(op.next_attempt_at)
        if op.status == ACCEPTED and due is not None and due > now + EARLY_TOLERANCE:
            # A duplicate copy arriving before the Retry-After of a re-scheduled attempt.
            self.queues.enqueue(kind, body, delay=(due - now).total_seconds())
            return "early"
        op.status = RUNNING
        op.finished_at = op.poison_queue = None  # set when a poisoned operation runs again
        op.attempts += 1
        op.started_at = op.started_at or iso(now)
        op.claimed_until = iso(now + timedelta(seconds=self.claim_seconds))
        op.next_attempt_at = None
        try:
            self.store.save(op)
        except StoreConflict:
            self.queues.enqueue(kind, body, delay=2)
            return "busy"
        return self._run(kind, op, envelope, body, dequeue_count)

    # --- steps -----------------------------------------------------------------------------

    def _run(self, kind: str, op: Operation, envelope: Any, body: bytes, dequeue_count: int) -> str:
        from shared.api.validation import decode
        from shared.operations.context import SendJournal, current_journal

        self._local.request_ids = []
        journal = SendJournal(op.send_issued_at, record=lambda when: self._record_send(op, when))
        token = current_journal.set(journal)
        try:
            request = decode(request_model(kind), msgspec.json.encode(envelope.request))
            ctx = self.context(op.connection, op.operation_id, op.user)
            self._local.request_ids = getattr(getattr(ctx, "graph", None), "request_ids", [])
            result = self.runner(kind, request, ctx, op.attempts > 1)
        except Exception as exc:
            return self._failed(kind, op, exc, body, dequeue_count)
        finally:
            current_journal.reset(token)
        op.result = msgspec.to_builtins(result)
        self._finish(op, SUCCEEDED)
        return SUCCEEDED

    def _record_send(self, op: Operation, when: str | None) -> None:
        """Persist sendIssuedAt before `/send` (we hold the claim); raises when it cannot."""
        op.send_issued_at = when
        if not self._save_holding_claim(op):
            raise StorageUnavailable("Could not record the send on the operation; retry later.")

    def _failed(
        self, kind: str, op: Operation, exc: Exception, body: bytes, dequeue_count: int
    ) -> str:
        decision = classify(exc, op.attempts)
        op.error = error_info(exc)
        op.claimed_until = None
        if decision.action == RESCHEDULE and op.attempts >= MAX_ATTEMPTS:
            decision = Decision(PERMANENT)
            op.error = {**op.error, "message": f"Gave up after {op.attempts} attempts."}
        if decision.action == PERMANENT:
            self._finish(op, FAILED)
            return FAILED
        if decision.action == PARK:
            op.sign_in_url = getattr(exc, "sign_in_url", None)
            op.admin_command = getattr(exc, "admin_command", None)
            op.parked_until = iso(self.clock() + self.parked_ttl)
            # The index entry first: a `parked` status nobody can find is stranded work. If
            # this raises, the message is retried by the host.
            self.store.index_parked(op)
            op.status = PARKED
            self._save_quietly(op)
            self._log_end(op)
            self._notify(op)
            return PARKED
        if decision.action == RESCHEDULE:
            op.status = ACCEPTED
            op.next_attempt_at = iso(self.clock() + timedelta(seconds=decision.delay))
            self._save_quietly(op)
            # A new message: the current one ends successfully and its dequeue count with it.
            self.queues.enqueue(kind, body, delay=decision.delay)
            return RESCHEDULE
        if dequeue_count >= self.max_dequeue_count:
            op.poison_queue = QUEUE_FOR[kind] + POISON_SUFFIX
            # The envelope stays: an operator may move the message back to run it again.
            op.status = POISONED
            op.finished_at = iso(self.clock())
            self._save_quietly(op)
            self._log_end(op)
            self._notify(op)
        else:
            op.status = ACCEPTED
            self._save_quietly(op)
        if isinstance(exc, AppError):
            log.warning("operation %s attempt %d: %s", op.operation_id, op.attempts, exc.code)
        else:
            log.error("operation %s attempt %d failed", op.operation_id, op.attempts, exc_info=exc)
        raise exc

    def _finish(self, op: Operation, status: str) -> None:
        op.status = status
        op.finished_at = iso(self.clock())
        op.claimed_until = None
        op.envelope = None  # no mail content is kept once the operation is over
        self._save_quietly(op)
        self._log_end(op)
        self._notify(op)

    def _log_end(self, op: Operation) -> None:
        """The operation's one structured line (the alert counts failures from it)."""
        from shared.oplog import OperationRecord, emit

        record = OperationRecord(op.operation_id, op.kind, connection=op.connection)
        record.request_ids = list(getattr(self._local, "request_ids", None) or [])
        record.fields.update(mode="queue", status=op.status, attempts=op.attempts)
        error = op.error or {}
        outcome = SUCCEEDED if op.status == SUCCEEDED else str(error.get("code") or op.status)
        started = parse_iso(op.started_at)
        duration = (self.clock() - started).total_seconds() * 1000 if started else 0.0
        emit(record, outcome, duration)

    def _notify(self, op: Operation) -> None:
        if self.on_final is None or not op.callback_url:
            return
        try:
            self.on_final(op)
        except Exception:
            log.exception("callback of operation %s failed", op.operation_id)

    def _save_holding_claim(self, op: Operation) -> bool:
        """Save; on a conflict take the stored etag and save ours again (we hold the claim).

        False when the operation is gone or three tries all conflicted.
        """
        for _ in range(3):
            try:
                self.store.save(op)
                return True
            except StoreConflict:
                current = self.store.get(op.operation_id)
                if current is None:
                    return False
                op.etag = current.etag
        return False

    def _save_quietly(self, op: Operation) -> None:
        """Save the outcome; a failure to record it is logged, not raised."""
        if not self._save_holding_claim(op):
            log.error("could not record the status of operation %s", op.operation_id)

    def _accept_dropped(self, kind: str, envelope: Any) -> Operation | None:
        from shared.work.idempotency import accept
        from shared.work.queueing import encode_envelope

        request = envelope.request
        key = request.get("idempotencyKey") if isinstance(request, dict) else None
        accepted = accept(
            self.store,
            kind=kind,
            operation_id=envelope.operationId,
            request_json=request,
            envelope=encode_envelope(envelope.operationId, request),
            key=key,
            user=request.get("user"),
            callback_url=request.get("callbackUrl"),
        )
        if not accepted.new and accepted.operation.operation_id != envelope.operationId:
            return None
        return accepted.operation

    def _reject(self, kind: str, body: bytes) -> None:
        poison = QUEUE_FOR[kind] + POISON_SUFFIX
        log.error("a %s message is not an operation envelope; moved to %s", kind, poison)
        client = self.queues.client(poison)
        client.send_message(body.decode("utf-8", errors="replace"))


_processor: Processor | None = None


def get_processor() -> Processor:
    """The process's Processor, wired to the runtime, the store and the queues."""
    global _processor
    if _processor is None:
        from shared.runtime import get_runtime
        from shared.work.callbacks import send_final_callback
        from shared.work.queueing import get_queues
        from shared.work.store import get_store

        runtime = get_runtime()
        settings = runtime.settings
        _processor = Processor(
            get_store(settings),
            get_queues(settings),
            runtime.context,
            max_dequeue_count=host_max_dequeue_count(),
            claim_seconds=settings.operation_claim_seconds,
            parked_ttl=timedelta(hours=settings.parked_ttl_hours),
            on_final=send_final_callback,
        )
    return _processor


def process_message(kind: str, body: bytes, dequeue_count: int) -> None:
    """The queue triggers' entry point."""
    started = time.monotonic()
    outcome = get_processor().process(kind, body, dequeue_count)
    log.info("%s message: %s in %.0f ms", kind, outcome, (time.monotonic() - started) * 1000)
