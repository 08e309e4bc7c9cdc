"""Blueprint: the `signin_health` timer (keeps delegated sign-ins alive and audits permissions;
daily at 04:00 UTC unless SIGNIN_HEALTH_SCHEDULE says otherwise) and the hourly `parked_work`
timer (reports work parked longer than PARKED_ALERT_MINUTES)."""

import logging

import azure.functions as func

from shared.settings import SIGNIN_HEALTH_SCHEDULE

bp = func.Blueprint()
log = logging.getLogger(__name__)

# Hourly, so "parked longer than an hour" is reported within the next hour; a run that finds
# nothing parked costs one Table query.
PARKED_WORK_SCHEDULE = "0 15 * * * *"


@bp.function_name("signin_health")
@bp.timer_trigger(arg_name="timer", schedule=f"%{SIGNIN_HEALTH_SCHEDULE}%", run_on_startup=False)
def signin_health(timer: func.TimerRequest) -> None:
    """Redeem idle refresh tokens, record and announce sign-in states, and audit permissions
    every SIGNIN_AUDIT_DAYS (shared.health.job)."""
    from shared.health.job import run
    from shared.runtime import get_runtime

    run(get_runtime())


@bp.function_name("parked_work")
@bp.timer_trigger(arg_name="timer", schedule=PARKED_WORK_SCHEDULE, run_on_startup=False)
def parked_work(timer: func.TimerRequest) -> None:
    """Log `operation.parked_overdue` once for each operation parked longer than
    PARKED_ALERT_MINUTES (the parked-work alert; shared.health.job)."""
    from shared.health.job import report_parked
    from shared.runtime import get_runtime

    report_parked(get_runtime())
