"""The sign-in pass of signin_health (no network): which sign-ins it redeems, its Key Vault write
budget and back-off, the states it records and the one event per state change; parked work
reported once when overdue."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.errors import GraphUnavailable
from shared.health.parked import report_overdue
from shared.work.record import new_operation
from shared.work.states import Status
from tests.fakes import MemoryStore
from tests.health_kit import HealthKit, LineCapture

SA, USERS = "docs.contoso.test", "users.contoso.test"
ANNA = "anna@contoso.test"
BRAM = "bram@contoso.test"


@pytest.fixture
def kit() -> HealthKit:
    k = HealthKit()
    k.connection(SA, "service_account", account="svc-docuflow@contoso.test")
    k.connection(USERS, "user")
    return k


def forced(kit: HealthKit) -> list[tuple[str, str | None]]:
    return [(c, u) for c, u, force in kit.tokens.calls if force]


def test_a_sign_in_idle_less_than_the_threshold_is_only_recorded(kit):
    kit.signed_in(SA, None, days_idle=3)
    with LineCapture() as lines:
        summary = kit.health.run()

    assert forced(kit) == [] and summary.refreshed == 0
    (line,) = lines.events("signin.health")
    assert line["state"] == "ok" and line["daysLeft"] == 87.0 and line["refreshed"] is False
    assert lines.events("signin.state") == [] and kit.notifier.sent == []


def test_a_sign_in_idle_80_days_is_redeemed_and_has_90_days_again(kit):
    kit.signed_in(SA, None, days_idle=80)
    with LineCapture() as lines:
        summary = kit.health.run()

    assert forced(kit) == [(SA, None)]
    assert (summary.refreshed, summary.vault_writes) == (1, 1)
    (line,) = lines.events("signin.health")
    assert line["state"] == "ok" and line["daysLeft"] == 90.0 and line["refreshed"] is True


def test_a_refused_refresh_marks_needs_sign_in_and_tells_once(kit):
    kit.signed_in(USERS, ANNA, days_idle=8)
    kit.refuse(USERS, ANNA)
    with LineCapture() as lines:
        kit.health.run()
        kit.days_pass(1)
        kit.health.run()

    (state,) = lines.events("signin.state")
    assert state["state"] == "needs_sign_in" and "previousState" not in state  # first seen
    assert state["reason"] == "inactivity (90 days without use)"
    assert state["user"] == "a***@contoso.test"  # masked
    ((connection, event),) = kit.notifier.sent
    assert connection == USERS and event["type"] == "signin.needs_sign_in"
    assert event["signInUrl"] == f"/api/auth/{USERS}/login?user=anna%40contoso.test"
    assert event["error"] == "invalid_grant (AADSTS700082)"
    (record,) = [r for r in kit.store.records() if r.user == ANNA]
    assert record.state == "needs_sign_in" and record.last_error_at


def test_a_service_accounts_event_names_the_admin_command(kit):
    kit.signed_in(SA, None, days_idle=30)
    kit.refuse(SA, None, code=50173)
    kit.health.run()

    ((_, event),) = kit.notifier.sent
    assert event["adminCommand"] == f"python -m admin connections authenticate {SA}"
    assert event["reason"].startswith("revoked")


def test_a_new_sign_in_after_needs_sign_in_is_ok_again_without_an_event(kit):
    kit.signed_in(SA, None, days_idle=30)
    kit.refuse(SA, None)
    kit.health.run()
    kit.tokens.answers.clear()
    kit.signed_in(SA, None, days_idle=0)  # the admin ran `connections authenticate`
    with LineCapture() as lines:
        kit.days_pass(1)
        kit.health.run()

    (state,) = lines.events("signin.state")
    assert (state["previousState"], state["state"]) == ("needs_sign_in", "ok")
    assert len(kit.notifier.sent) == 1  # only the first change told anybody


def test_the_vault_write_budget_refreshes_the_oldest_first_and_defers_the_rest():
    kit = HealthKit(signin_max_vault_writes=1)
    for i, days in enumerate((20, 60, 40)):
        kit.connection(f"c{i}.contoso.test", "service_account")
        kit.signed_in(f"c{i}.contoso.test", None, days_idle=days)

    summary = kit.health.run()

    assert forced(kit) == [("c1.contoso.test", None)]  # 60 days idle: closest to the limit
    assert (summary.refreshed, summary.deferred, summary.vault_writes) == (1, 2, 1)


def test_a_sign_in_deferred_past_the_warning_line_is_expiring_and_tells_once():
    kit = HealthKit(signin_max_vault_writes=0)
    kit.connection(SA, "service_account")
    kit.signed_in(SA, None, days_idle=80)

    kit.health.run()
    kit.days_pass(1)
    kit.health.run()

    ((_, event),) = kit.notifier.sent
    assert event["type"] == "signin.expiring" and event["daysLeft"] == 10.0
    assert event["expectedExpiry"] and kit.store.records()[0].state == "expiring"


def test_throttling_backs_off_and_then_succeeds(kit):
    kit.signed_in(SA, None, days_idle=10)
    busy = GraphUnavailable("Entra ID is unavailable", retry_after=3.0)
    kit.tokens.answers[(SA, None)] = [busy, busy, "ok"]

    summary = kit.health.run()

    assert kit.sleeps == [3.0, 6.0] and summary.refreshed == 1 and not summary.throttled


def test_lasting_throttling_stops_the_run_and_leaves_the_rest_for_the_next(kit):
    kit.signed_in(SA, None, days_idle=30)
    kit.signed_in(USERS, ANNA, days_idle=20)
    kit.fail(SA, None, GraphUnavailable("throttled", retry_after=100.0))

    summary = kit.health.run()

    assert summary.throttled and summary.deferred == 2 and summary.refreshed == 0
    assert kit.sleeps == [30.0, 30.0]  # Retry-After, capped
    assert forced(kit) == [(SA, None)] * 3  # the user's sign-in is not tried meanwhile
    assert kit.notifier.sent == []


def test_work_that_finds_a_lost_sign_in_marks_it_once(kit):
    kit.signed_in(USERS, ANNA, days_idle=2)
    reason = "invalid_grant (AADSTS50076)"

    kit.health.mark_refused(USERS, ANNA, reason)
    kit.health.mark_refused(USERS, ANNA, reason)

    ((_, event),) = kit.notifier.sent
    assert event["type"] == "signin.needs_sign_in" and event["reason"] == "MFA required"


def test_no_token_or_refresh_token_ever_reaches_a_line_or_an_event(kit):
    kit.signed_in(SA, None, days_idle=80)
    kit.signed_in(USERS, ANNA, days_idle=80)
    kit.refuse(USERS, ANNA)
    with LineCapture() as lines:
        kit.health.run()

    text = "\n".join(lines.lines) + repr(kit.notifier.sent)
    assert "not-a-real-token" not in text and "access-token" not in text


def test_parked_work_is_reported_once_when_overdue_and_forgotten_when_it_resumes(kit):
    ops = MemoryStore()
    op = new_operation("00000000-0000-4000-8000-000000000abc", "send", SA, status=Status.PARKED)
    parked_at = kit.now
    op.parked_until = (parked_at + timedelta(hours=72)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    op.admin_command = f"python -m admin connections authenticate {SA}"
    ops.create(op)
    ops.index_parked(op)
    with LineCapture() as lines:
        early = report_overdue(ops, kit.store, kit.settings, now=parked_at + timedelta(minutes=59))
        late = report_overdue(ops, kit.store, kit.settings, now=parked_at + timedelta(minutes=61))
        again = report_overdue(ops, kit.store, kit.settings, now=parked_at + timedelta(minutes=90))

    assert (early, late, again) == ([], [op.operation_id], [])
    (line,) = lines.events("operation.parked_overdue")
    assert line["parkedMinutes"] == 61 and line["connection"] == SA
    stored = ops.get(op.operation_id)
    assert stored is not None
    stored.status = Status.ACCEPTED
    ops.save(stored)
    report_overdue(ops, kit.store, kit.settings, now=parked_at + timedelta(minutes=95))
    assert kit.store.overdue_reported() == set()


def test_an_event_to_a_url_the_connection_no_longer_allows_is_never_sent():
    from shared.health.notify import Notifier, event

    class NoNetwork:
        def post(self, *a, **kw):
            raise AssertionError("an event went out to a URL that is not allowed")

    kit = HealthKit()
    kit.connection(SA, "service_account", notifyUrl="https://evil.example/hook")
    from shared.identity.secret_names import signing_key_secret

    kit.client.set_secret(signing_key_secret(SA), "a-signing-key")
    conn = kit.registry.get(SA)
    notifier = Notifier(kit.registry, guarded_session=NoNetwork(), plain_session=NoNetwork())

    outcome = notifier.send(conn, event("signin.needs_sign_in", SA))

    assert outcome == {"status": "failed", "attempts": 0, "reason": "URL not allowed"}


class DeniedGraph:
    """Graph as a trustee without Full Access sees it: every mailbox call is refused."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def get(self, path: str, **kw):
        from shared.errors import AccessDenied

        self.calls.append(path)
        raise AccessDenied("Access is denied.")


def test_the_weekly_audit_runs_once_a_week_and_writes_a_line_per_failing_check():
    from types import SimpleNamespace

    from shared.health.job import AUDIT_RUN, audit_if_due
    from shared.timestamps import iso, now_utc

    kit = HealthKit()
    kit.connection(SA, "service_account", account="svc-docuflow@contoso.test")
    # SA may send as *@contoso.test (nothing concrete to audit); USERS as bram only.
    kit.connection(
        USERS, "service_account", account="svc-docuflow@contoso.test", allowedSenders=[BRAM]
    )
    graph = DeniedGraph()
    runtime = SimpleNamespace(
        settings=kit.settings,
        health_store=kit.store,
        secrets=kit.secrets,
        connections=kit.registry,
        tokens=kit.tokens,
        context=lambda name, op_id, user=None: SimpleNamespace(graph=graph),
    )

    with LineCapture() as lines:
        first = audit_if_due(runtime)
        second = audit_if_due(runtime)  # the same week: not again
        kit.store.set_last_run(AUDIT_RUN, iso(now_utc() - timedelta(days=7, minutes=1)) or "")
        third = audit_if_due(runtime)

    assert first == third == {"connections": 2, "failingChecks": 1} and second is None
    found = lines.events("permission.audit")
    assert len(found) == 2 and found[0] == found[1]
    assert found[0]["connection"] == USERS and found[0]["check"] == "fullAccess"
    assert found[0]["mailbox"] == "b***@contoso.test" and found[0]["status"] == "missing"
    assert found[0]["grant"].startswith("Add-MailboxPermission -Identity bram@contoso.test")
    assert graph.calls == ["/users/bram@contoso.test/mailFolders/sentitems"] * 2
