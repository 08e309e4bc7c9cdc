"""What the timers run: `signin_health` the sign-in pass and (every SIGNIN_AUDIT_DAYS) the
permission audit of every connection, `parked_work` (hourly) the report of parked work gone
overdue; each reported in log lines the alert rules read. One step failing does not stop the
others; a run's summary is logged."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from shared.errors import AppError
from shared.health import events
from shared.health.audit import Auditor, AuditReport
from shared.timestamps import iso, now_utc, parse_iso

log = logging.getLogger(__name__)

AUDIT_RUN = "audit"


def run(runtime: Any) -> dict[str, Any]:
    """One run with the process's Runtime; returns its summary (also logged)."""
    summary: dict[str, Any] = {}
    try:
        result = runtime.signin_health.run()
        summary["signIns"] = vars(result)
    except AppError as exc:
        summary["signIns"] = {"error": exc.code}
        log.error("sign-in health pass failed: %s", exc.message)
    summary["audit"] = audit_if_due(runtime)
    log.info("signin_health run: %s", summary)
    return summary


def report_parked(runtime: Any) -> dict[str, Any]:
    """The `parked_work` run: report parked work older than PARKED_ALERT_MINUTES (once each);
    returns its summary (also logged)."""
    from shared.health.parked import report_overdue

    try:
        overdue = report_overdue(runtime.store, runtime.health_store, runtime.settings)
        summary: dict[str, Any] = {"parkedOverdue": len(overdue)}
    except AppError as exc:
        summary = {"parkedOverdue": {"error": exc.code}}
        log.error("parked-work check failed: %s", exc.message)
    log.info("parked_work run: %s", summary)
    return summary


def audit_if_due(runtime: Any) -> dict[str, Any] | None:
    """Audit every connection when the last audit is SIGNIN_AUDIT_DAYS old (0: never)."""
    days = runtime.settings.signin_audit_days
    if days <= 0:
        return None
    now = now_utc()
    try:
        last = parse_iso(runtime.health_store.last_run(AUDIT_RUN))
        if last is not None and now - last < timedelta(days=days):
            return None
        runtime.health_store.set_last_run(AUDIT_RUN, iso(now) or "")
        names = connection_names(runtime)
    except AppError as exc:
        log.error("permission audit not run: %s", exc.message)
        return {"error": exc.code}
    failing = 0
    auditor = Auditor(runtime)
    for name in names:
        try:
            report = auditor.audit(name)
        except AppError as exc:
            log.warning("permission audit of %s failed: %s", name, exc.code)
            continue
        failing += audit_lines(report, mask=runtime.settings.mask_addresses_in_logs)
    return {"connections": len(names), "failingChecks": failing}


def audit_lines(report: AuditReport, *, mask: bool) -> int:
    """One `permission.audit` line per failing check of `report` (the audit alert); returns
    how many."""
    problems = [(None, report.sign_in)] if report.sign_in and report.sign_in.failing else []
    problems += [(m.mailbox, c) for m in report.mailboxes for c in m.checks if c.failing]
    for mailbox, check in problems:
        events.emit(
            events.PERMISSION_AUDIT,
            level=logging.WARNING,
            connection=report.connection,
            mailbox=events.address(mailbox, mask),
            check=check.check,
            status=check.status,
            grant=check.grant,
        )
    return len(problems)


def connection_names(runtime: Any) -> list[str]:
    """Every connection the vault holds (from the secrets' owner tags, one listing)."""
    from shared.identity import secret_names

    return sorted(
        {
            tags[secret_names.TAG_CONNECTION]
            for name, tags in runtime.secrets.list_properties()
            if name.startswith(secret_names.CONNECTION_PREFIX)
            and tags.get(secret_names.TAG_CONNECTION)
        }
    )
