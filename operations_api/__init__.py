"""Blueprint: GET /api/operations/{operationId} and the daily clean-up of the operation store."""

import azure.functions as func

from shared import signin_hooks
from shared.http import error_response, json_response
from shared.parking import on_sign_in

bp = func.Blueprint()

# A successful sign-in for a connection (and user) re-queues the work parked for it.
signin_hooks.register(on_sign_in)


@bp.function_name("operation_status")
@bp.route(route="operations/{operationId}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def operation_status(req: func.HttpRequest) -> func.HttpResponse:
    """The status of a queued or finished operation (404 when unknown or past retention)."""
    operation_id = req.route_params.get("operationId", "")
    try:
        from shared.errors import OperationNotFound
        from shared.operation_store import get_store
        from shared.settings import get_settings

        op = get_store(get_settings()).get(operation_id) if len(operation_id) <= 64 else None
        if op is None:
            raise OperationNotFound("There is no operation with this id.")
        return json_response(200, op.public())
    except Exception as exc:
        return error_response(exc, operation_id)


@bp.function_name("operations_cleanup")
@bp.timer_trigger(arg_name="timer", schedule="0 30 3 * * *", run_on_startup=False)
def operations_cleanup(timer: func.TimerRequest) -> None:
    """Daily: end expired parked work, purge finished operations past the retention."""
    from shared.callbacks import send_final_callback
    from shared.operation_store import get_store
    from shared.parking import expire_parked
    from shared.settings import get_settings

    settings = get_settings()
    store = get_store(settings)
    expire_parked(store, on_final=send_final_callback)
    store.purge(settings.operation_retention_days)
