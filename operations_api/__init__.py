"""Blueprint: GET /api/operations/{operationId} and the daily clean-up of the operation store."""

import logging

import azure.functions as func

from shared.api.http import error_response, json_response

bp = func.Blueprint()
log = logging.getLogger(__name__)


def valid_id(value: str) -> bool:
    from shared.work.processor import valid_operation_id

    return valid_operation_id(value)


@bp.function_name("operation_status")
@bp.route(route="operations/{operationId}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def operation_status(req: func.HttpRequest) -> func.HttpResponse:
    """The status of a queued or finished operation (404 when unknown or past retention)."""
    operation_id = req.route_params.get("operationId", "")
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
        body_bytes = req.get_body() or b""
        authorize(runtime, op.connection, req.method, req.url, req.headers, body_bytes)
        body = op.public()
        if body.get("signInUrl", "").startswith("/"):
            # Parked by a queue worker without PUBLIC_BASE_URL: no request to take a base from
            # then, so complete the link from this request's URL (as the sync answer does).
            from shared.identity.signin import base_url

            body["signInUrl"] = (
                base_url(runtime.settings.public_base_url, req.url) + body["signInUrl"]
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
