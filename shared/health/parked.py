"""Parked work, told about: one `operation.parked` event to the connection's notifyUrl when an
operation parks, and one log line (the parked-work alert) when it has waited longer than
PARKED_ALERT_MINUTES. Both once per operation: the line's report is remembered in the health
store until the operation leaves `parked`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from shared.health import events
from shared.health.notify import Notifier, event
from shared.health.records import refusal_in
from shared.health.store import HealthStore
from shared.identity.connections import ConnectionRegistry
from shared.settings import Settings
from shared.timestamps import iso, now_utc, parse_iso
from shared.work.record import Operation
from shared.work.states import Status
from shared.work.store import OperationStore

log = logging.getLogger(__name__)


def parked_at(op: Operation, ttl_hours: float) -> datetime | None:
    """When the operation parked: its deadline minus the parked-work TTL."""
    until = parse_iso(op.parked_until)
    return until - timedelta(hours=ttl_hours) if until else None


def report_overdue(
    operations: OperationStore,
    store: HealthStore,
    settings: Settings,
    *,
    now: datetime | None = None,
) -> list[str]:
    """Log `operation.parked_overdue` once for each operation parked longer than
    PARKED_ALERT_MINUTES; returns their ids. Markers of operations no longer parked go."""
    current = now or now_utc()
    limit = timedelta(minutes=settings.parked_alert_minutes)
    reported = store.overdue_reported()
    still_parked: set[str] = set()
    lines: list[str] = []
    for entry in operations.all_parked():
        op = operations.get(entry.operation_id)
        if op is None or op.status != Status.PARKED:
            continue
        still_parked.add(op.operation_id)
        since = parked_at(op, settings.parked_ttl_hours)
        if since is None or current - since < limit or op.operation_id in reported:
            continue
        if not store.mark_overdue(op.operation_id):
            continue  # another instance reported it
        events.emit(
            events.PARKED_OVERDUE,
            level=logging.WARNING,
            operationId=op.operation_id,
            operation=op.kind,
            connection=op.connection,
            user=events.address(op.user, settings.mask_addresses_in_logs),
            parkedAt=iso(since),
            parkedMinutes=round((current - since).total_seconds() / 60),
            parkedUntil=op.parked_until,
            adminCommand=op.admin_command,
        )
        lines.append(op.operation_id)
    for operation_id in reported - still_parked:
        store.forget_overdue(operation_id)
    return lines


def announce_parked(
    op: Operation,
    connections: ConnectionRegistry,
    notifier: Notifier,
    mark_refused: Callable[[str, str | None, str], None],
) -> None:
    """The lifecycle's `on_parked`: record the lost sign-in (`needs_sign_in`, announced once)
    and send `operation.parked` to the connection's notifyUrl. Called after the operation is
    stored as parked; a failure here is logged and never undoes the parking (the timer's next
    run finds the sign-in anyway)."""
    error = op.error.message if op.error is not None else ""
    try:
        mark_refused(op.connection, op.user, refusal_in(error))
    except Exception as exc:
        log.warning("could not record the lost sign-in of %s: %s", op.connection, exc)
    try:
        connection = connections.get(op.connection)
        notifier.send(
            connection,
            event(
                "operation.parked",
                op.connection,
                operationId=op.operation_id,
                operation=op.kind,
                user=op.user,
                signInUrl=op.sign_in_url,
                adminCommand=op.admin_command,
                parkedUntil=op.parked_until,
            ),
        )
    except Exception as exc:
        log.warning("operation.parked event of %s not sent: %s", op.operation_id, exc)
