"""Blueprint: GET /api/operations/{operationId} and the daily clean-up of the operation store."""

import logging

import azure.functions as func

from shared.api.http import error_response, json_response
from shared.identity import signin_hooks
from shared.work.parking import on_sign_in

bp = func.Blueprint()
log = logging.getLogger(__name__)


def valid_id(value: str) -> bool:
    from shared.work.processor import valid_operation_id

    return valid_operation_id(value)


# A successful sign-in for a connection (and user) re-queues the work parked for it.
signin_hooks.register(on_sign_in)


@bp.function_name("operation_status")
@bp.route(route="operations/{operationId}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def operation_status(req: func.HttpRequest) -> func.HttpResponse:
    """The status of a queued or finished operation (404 when unknown or past retention)."""
    operation_id = req.route_params.get("operationId", "")
    try:
        from shared.errors import OperationNotFound
        from shared.settings import get_settings
        from shared.work.store import get_store

        # Ids are UUIDs: anything else (also `#`, `/`, `?`, which Table keys refuse) is unknown.
        op = get_store(get_settings()).get(operation_id) if valid_id(operation_id) else None
        if op is None:
            raise OperationNotFound("There is no operation with this id.")
        from shared.api.request_auth import authorize
        from shared.runtime import get_runtime

        # An operation is read with the same right as acting on its connection.
        body_bytes = req.get_body() or b""
        authorize(get_runtime(), op.connection, req.method, req.url, req.headers, body_bytes)
        body = op.public()
        if body.get("signInUrl", "").startswith("/"):
            # Parked by a queue worker without PUBLIC_BASE_URL: no request to take a base from
            # then, so complete the link from this request's URL (as the sync answer does).
            from shared.identity.signin import base_url

            body["signInUrl"] = (
                base_url(get_settings().public_base_url, req.url) + body["signInUrl"]
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
    """Daily: end expired parked work, purge finished operations past the retention."""
    from shared.api.replay import get_nonce_store
    from shared.settings import get_settings
    from shared.work.callbacks import send_final_callback
    from shared.work.parking import expire_parked
    from shared.work.queueing import get_queues
    from shared.work.recovery import recover_stale
    from shared.work.store import get_store

    settings = get_settings()
    store = get_store(settings)
    expire_parked(store, on_final=send_final_callback)
    # Operations a dead host or a crashed accept left behind (accepted/running, no message).
    recover_stale(store, get_queues(settings), on_final=send_final_callback)
    store.purge(settings.operation_retention_days)
    get_nonce_store(settings).purge()
