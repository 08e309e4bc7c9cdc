"""`mode: async` and `mode: auto` at the HTTP edge: accept through the lifecycle and answer.

`async` records the operation (idempotently) and queues it: 202 with `operationId` and a status
URL. `auto` does the same with a safety-net message, runs the first attempt now
(shared.work.lifecycle, Policy.INLINE) and answers like sync when it ends there (200, or the
error); when it is rescheduled (throttling, outages), parked (a sign-in is needed) or handed to
the queue, the answer is 202 with the current status. Called by shared.api.http.handle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from shared.errors import StorageUnavailable
from shared.models import OperationRequest
from shared.work.states import Status

if TYPE_CHECKING:
    from shared.runtime import Runtime
    from shared.work.record import Operation


def effective_mode(request: OperationRequest) -> str:
    """The mode a request runs in: as asked, except that a `sync` send that files or archives
    its sent copy runs as `auto` (docs/operations.md, send-and-file).

    Exchange files the Sent Items copy only after the mail went out, which can take minutes
    under the sending rate; a sync caller cannot be held that long, and nothing may be lost if
    the instance stops meanwhile. So the operation is recorded first (like `auto`): the answer
    is 200 with the whole result when the copy was filed at once, else 202 with the status URL
    while the filing continues from the queue.
    """
    wants_copy = getattr(request, "file_to", None) is not None or (
        hasattr(request, "file_to") and getattr(request, "archive", None) is not None
    )
    if request.mode == "sync" and wants_copy:
        return "auto"
    return request.mode


def status_url(base: str, operation_id: str) -> str:
    return f"{base}/api/operations/{operation_id}"


def _answer(
    op: Operation, base: str, *, duplicate: bool = False, status: str | None = None
) -> tuple[int, dict[str, Any], dict[str, str]]:
    url = status_url(base, op.operation_id)
    body: dict[str, Any] = {
        "operationId": op.operation_id,
        "status": status or str(op.status),
        "statusUrl": url,
    }
    if duplicate:
        body["duplicate"] = True
    if op.result is not None:
        body["result"] = op.result
    if op.error is not None:
        error = msgspec.to_builtins(op.error)
        if str(error.get("signInUrl", "")).startswith("/"):
            # Without PUBLIC_BASE_URL the link is relative: complete it from this request.
            error["signInUrl"] = base + error["signInUrl"]
        body["error"] = error
    return 202, body, {"Location": url}


def submit(
    request: OperationRequest,
    kind: str,
    operation_id: str,
    base: str,
    runtime: Runtime,
    *,
    request_ids: list[str] | None = None,
) -> tuple[int, Any, dict[str, str]]:
    """Accept `request` for the queue (async) or run its first attempt now (auto).

    Returns (status, body, headers); `request_ids` collects Graph's request ids of an inline
    attempt. Raises IdempotencyConflict, PayloadTooLarge, StorageUnavailable (nothing was
    recorded), ValidationFailed (callbackUrl), and for auto the operation's own permanent error
    (after recording it and calling back).
    """
    from shared.models import to_builtins
    from shared.work.callbacks import check_callback_url
    from shared.work.lifecycle import Policy

    if request.callback_url:
        connection = runtime.connections.get(request.connection)
        has_key = bool(runtime.connections.signing_key(connection))
        check_callback_url(request.callback_url, connection, has_signing_key=has_key)
    lifecycle = runtime.lifecycle
    inline = request.mode == "auto"
    accepted = lifecycle.accept(
        kind,
        operation_id,
        to_builtins(request),
        key=request.idempotency_key,
        user=request.user,
        callback_url=request.callback_url,
        policy=Policy.INLINE if inline else Policy.QUEUED,
    )
    op = accepted.operation
    if not accepted.new:
        return _answer(op, base, duplicate=True)
    if not inline:
        return _answer(op, base)
    try:
        outcome = lifecycle.run_inline(op, request)
    except StorageUnavailable:
        # The attempt's end could not be recorded: the record still says running, and the
        # safety-net message resumes the operation when the claim ends.
        return _answer(op, base, status=Status.RUNNING)
    if request_ids is not None:
        request_ids.extend(outcome.request_ids)
    if outcome.step == Status.SUCCEEDED:
        return 200, outcome.result, {}
    if outcome.step == Status.FAILED and outcome.error is not None:
        raise outcome.error
    return _answer(op, base)
