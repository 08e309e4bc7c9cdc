"""Blueprint: GET /api/operations/{operationId} and the daily clean-up of the operation store."""

import logging

import azure.functions as func

from shared.api.http import (
    Request,
    RequestHead,
    Response,
    error_response,
    json_response,
    read_body,
    request_head,
    run_blocking,
)

bp = func.Blueprint()
log = logging.getLogger(__name__)


def valid_id(value: str) -> bool:
    from shared.work.processor import valid_operation_id

    return valid_operation_id(value)


@bp.function_name("operation_status")
@bp.route(route="operations/{operationId}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def operation_status(req: Request) -> Response:
    """The status of a queued or finished operation (404 when unknown or past retention)."""
    head = request_head(req)
    try:
        body = await read_body(req)
    except Exception as exc:
        return error_response(exc, None)
    return await run_blocking(_status, head, body)


def _status(head: RequestHead, body_bytes: bytes) -> Response:
    operation_id = head.route.get("operationId", "")
    try:
        from shared.errors import OperationNotFound
        from shared.runtime import get_runtime

        runtime = get_runtime()
        # Ids are UUIDs: anything else (also `#`, `/`, `?`, which Table keys refuse) is unknown.
        op = runtime.store.get(operation_id) if valid_id(operation_id) else None
        if op is None:
            raise OperationNotFound("There is no operation with this id.")
        from shared.api.request_auth import authorize

        # An operation is read with the same right as acting on its connection.
        authorize(runtime, op.connection, head.method, head.url, head.headers, body_bytes)
        body = op.public()
        if body.get("signInUrl", "").startswith("/"):
            # Parked by a queue worker without PUBLIC_BASE_URL: no request to take a base from
            # then, so complete the link from this request's URL (as the sync answer does).
            from shared.identity.signin import base_url

            body["signInUrl"] = (
                base_url(runtime.settings.public_base_url, head.url) + body["signInUrl"]
            )
        return json_response(200, body)
    except Exception as exc:
        from shared.errors import AppError

        if not isinstance(exc, AppError):
            # Unexpected: keep the traceback for the logs (the answer says only "internal").
            log.exception("operation_status failed unexpectedly")
        return error_response(exc, None if not valid_id(operation_id) else operation_id)


@bp.function_name("operations_cleanup")
@bp.timer_trigger(arg_name="timer", schedule="0 30 3 * * *", run_on_startup=False)
def operations_cleanup(timer: func.TimerRequest) -> None:
    """Daily: end expired parked work, re-queue stranded work, purge finished operations past
    the retention."""
    from shared.runtime import get_runtime
    from shared.work.parking import expire_parked
    from shared.work.recovery import recover_stale

    runtime = get_runtime()
    store = runtime.store
    expire_parked(store, on_final=runtime.callbacks)
    # Operations a dead host or a crashed accept left behind (accepted/running, no message).
    recover_stale(store, runtime.queues, on_final=runtime.callbacks)
    store.purge(runtime.settings.operation_retention_days)
    runtime.nonces.purge()
