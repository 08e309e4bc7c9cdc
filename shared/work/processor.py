"""The queue edge: one message of a mail queue → its operation's next attempt in the lifecycle.

The message is `{"v": 1, "operationId", "request"}` (shared.work.queueing). A message that is
not an envelope, or names no valid operation id, goes to `<queue>-poison` at once. A valid one
that names an operation nobody accepted (DocuFlow put it on the queue itself) is accepted
first. Everything else is shared.work.lifecycle's: gates (final, parked, busy, early), the
claim, the attempt and how it ends.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import msgspec

from shared.work.idempotency import accept
from shared.work.lifecycle import Lifecycle
from shared.work.queueing import Envelope, decode_envelope, encode_envelope
from shared.work.record import Operation

log = logging.getLogger(__name__)

REJECTED = "rejected"
DUPLICATE = "duplicate"


def valid_operation_id(value: str) -> bool:
    """Operation ids are UUIDs (the HTTP edge makes them); anything else is not ours."""
    try:
        uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return False
    return len(value) <= 64


class Processor:
    """Runs the queue messages of one function app instance through the lifecycle."""

    def __init__(self, lifecycle: Lifecycle) -> None:
        self.lifecycle = lifecycle

    def process(self, kind: str, body: bytes, dequeue_count: int) -> str:
        """Handle one message of queue `kind`; returns what happened (for logs and tests).

        Raises only for Action.RETRY (the host then retries, then poisons) and when the
        outcome cannot be recorded (StorageUnavailable: the message comes back).
        """
        try:
            envelope = decode_envelope(body)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return self._reject(kind, body)
        if not valid_operation_id(envelope.operationId):
            return self._reject(kind, body)
        op = self.lifecycle.store.get(envelope.operationId)
        if op is None:
            op = self._accept_dropped(kind, envelope)
            if op is None:
                return DUPLICATE
        if op.kind != kind:
            # A message re-routed to another kind's queue: not ours to run as that kind.
            return self._reject(kind, body)
        model = self.lifecycle.kinds[op.kind].request

        def load_request() -> Any:
            # The same validation as the HTTP edge: a bad request fails the operation.
            from shared.api.validation import decode

            return decode(model, msgspec.json.encode(envelope.request))

        return self.lifecycle.run_queued(op, load_request, body, dequeue_count).step

    def _accept_dropped(self, kind: str, envelope: Envelope) -> Operation | None:
        """Accept an operation whose message DocuFlow queued itself (no record yet)."""
        request = envelope.request
        key = request.get("idempotencyKey")
        accepted = accept(
            self.lifecycle.store,
            kind=kind,
            operation_id=envelope.operationId,
            request_json=request,
            envelope=encode_envelope(envelope.operationId, request),
            key=key if isinstance(key, str) else None,
            user=request.get("user"),
            callback_url=request.get("callbackUrl"),
        )
        if not accepted.new and accepted.operation.operation_id != envelope.operationId:
            return None
        return accepted.operation

    def _reject(self, kind: str, body: bytes) -> str:
        log.error("a %s message is not an operation envelope; moved to its poison queue", kind)
        self.lifecycle.queues.to_poison(kind, body)
        return REJECTED


def process_message(kind: str, body: bytes, dequeue_count: int) -> None:
    """The queue triggers' entry point."""
    from shared.runtime import get_runtime

    started = time.monotonic()
    outcome = get_runtime().processor.process(kind, body, dequeue_count)
    log.info("%s message: %s in %.0f ms", kind, outcome, (time.monotonic() - started) * 1000)
