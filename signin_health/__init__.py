"""Blueprint: the `signin_health` timer (keeps delegated sign-ins alive, reports parked work
and permission problems; daily at 04:00 UTC unless SIGNIN_HEALTH_SCHEDULE says otherwise)."""

import logging

import azure.functions as func

from shared.settings import SIGNIN_HEALTH_SCHEDULE

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.function_name("signin_health")
@bp.timer_trigger(arg_name="timer", schedule=f"%{SIGNIN_HEALTH_SCHEDULE}%", run_on_startup=False)
def signin_health(timer: func.TimerRequest) -> None:
    """Redeem idle refresh tokens, record and announce sign-in states, report parked work
    waiting too long, and audit permissions every SIGNIN_AUDIT_DAYS (shared.health.job)."""
    from shared.health.job import run
    from shared.runtime import get_runtime

    run(get_runtime())
