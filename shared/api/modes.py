"""The queued side of the HTTP edge: `mode: async` and `mode: auto`.

`async` records the operation (idempotently) and queues it: 202 with `operationId` and a status
URL. `auto` records it as running, queues a safety-net message visible when its claim ends, and
tries now; when Graph throttles or is unavailable it queues the work instead (202), otherwise it
answers like sync (and calls the callbackUrl). Called by shared.api.http.handle.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import msgspec

from shared.errors import AppError, StorageUnavailable

log = logging.getLogger(__name__)


def status_url(base: str, operation_id: str) -> str:
    return f"{base}/api/operations/{operation_id}"


def _answer(op: Any, base: str, *, duplicate: bool = False) -> tuple[int, dict[str, Any], dict]:
    url = status_url(base, op.operation_id)
    body: dict[str, Any] = {"operationId": op.operation_id, "status": op.status, "statusUrl": url}
    if duplicate:
        body["duplicate"] = True
    if op.result is not None:
        body["result"] = op.result
    if op.error is not None:
        body["error"] = op.error
    return 202, body, {"Location": url}


def submit(
    request: Any,
    kind: str,
    operation_id: str,
    base: str,
    runtime: Any,
    *,
    run_now: Any = None,
) -> tuple[int, Any, dict[str, str]]:
    """Accept `request` for the queue (async) or try it first (auto, via `run_now(ctx)`).

    Returns (status, body, headers). Raises IdempotencyConflict, PayloadTooLarge,
    StorageUnavailable (the record is taken back when its message cannot be queued),
    ValidationFailed (callbackUrl), and for auto the operation's own permanent errors (after
    recording them and calling back).
    """
    from shared.operations.context import SendJournal, current_journal
    from shared.work.callbacks import check_callback_url
    from shared.work.idempotency import accept
    from shared.work.processor import RESCHEDULE, classify, error_info
    from shared.work.queueing import encode_envelope, get_queues
    from shared.work.store import (
        FAILED,
        RUNNING,
        SUCCEEDED,
        get_store,
        iso,
        now_utc,
    )

    settings = runtime.settings
    from shared.models import to_builtins

    request_json = to_builtins(request)
    if request.callback_url:
        connection = runtime.connections.get(request.connection)
        has_key = bool(runtime.connections.signing_key(connection))
        check_callback_url(request.callback_url, connection, has_signing_key=has_key)
    envelope = encode_envelope(operation_id, request_json)
    store = get_store(settings)
    queues = get_queues(settings)
    auto = request.mode == "auto"
    accepted = accept(
        store,
        kind=kind,
        operation_id=operation_id,
        request_json=request_json,
        envelope=envelope,
        key=request.idempotency_key,
        user=request.user,
        callback_url=request.callback_url,
        status=RUNNING if auto else "accepted",
    )
    op = accepted.operation
    if not accepted.new:
        if accepted.enqueue:
            queues.enqueue(kind, op.envelope or envelope)
        return _answer(op, base, duplicate=True)
    claim = settings.operation_claim_seconds
    try:
        # auto: a safety net first. It becomes visible when our claim ends, so a crash during
        # the inline run is resumed by a worker; after a normal end it finds the operation
        # final and is dropped.
        queues.enqueue(kind, envelope, delay=claim if auto else 0)
    except StorageUnavailable:
        # No message behind the record: take the record back so a retry starts clean.
        store.forget(op)
        raise
    if not auto:
        return _answer(op, base)
    now = now_utc()
    op.attempts = 1
    op.started_at = iso(now)
    op.claimed_until = iso(now + timedelta(seconds=claim))
    store.save(op)
    journal = SendJournal(record=lambda when: _record_send(store, op, when))
    token = current_journal.set(journal)
    try:
        result = run_now()
    except Exception as exc:
        op.error = error_info(exc)
        op.claimed_until = None
        if isinstance(exc, AppError) and classify(exc).action == RESCHEDULE:
            delay = classify(exc).delay
            op.status = "accepted"
            op.next_attempt_at = iso(now_utc() + timedelta(seconds=delay))
            store.save(op)
            queues.enqueue(kind, envelope, delay=delay)
            return _answer(op, base)
        op.status = FAILED
        op.finished_at = iso(now_utc())
        op.envelope = None
        store.save(op)
        _final_callback(op)
        raise
    finally:
        current_journal.reset(token)
    op.status = SUCCEEDED
    op.result = msgspec.to_builtins(result)
    op.finished_at = iso(now_utc())
    op.claimed_until = None
    op.envelope = None
    store.save(op)
    _final_callback(op)
    return 200, result, {}


def _record_send(store: Any, op: Any, when: str | None) -> None:
    """Persist sendIssuedAt before an inline `/send` (the queued resume then waits for it)."""
    op.send_issued_at = when
    store.save(op)


def _final_callback(op: Any) -> None:
    """Call the operation's callbackUrl when `auto` ended inline (as a worker would)."""
    if not op.callback_url:
        return
    from shared.work.callbacks import send_final_callback

    try:
        send_final_callback(op)
    except Exception:
        log.exception("callback of operation %s failed", op.operation_id)
