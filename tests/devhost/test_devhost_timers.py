"""The devhost runs timer triggers: NCRONTAB schedules, run_on_startup, and missed runs past due."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest
import requests

from devhost.app_index import index_functions
from devhost.ncrontab import ScheduleError, parse_schedule
from devhost.services import ServiceError, wait_until
from devhost.timer_host import resolve_schedule
from tests.conftest import fresh_function_app
from tests.devhost.conftest import FIXTURE_KEY, FIXTURE_MASTER_KEY, new_fixture_host

# A Friday, 10:00:14.5 UTC.
FRIDAY = datetime(2026, 5, 1, 10, 0, 14, 500_000, tzinfo=UTC)


def occurrences(expression: str, after: datetime, count: int = 3) -> list[datetime]:
    schedule, found = parse_schedule(expression), []
    for _ in range(count):
        after = schedule.next_after(after)
        found.append(after)
    return found


# --- NCRONTAB (pure) ---------------------------------------------------------------------------


def test_daily_schedule_runs_once_a_day_at_its_utc_time():
    assert occurrences("0 30 3 * * *", FRIDAY, 2) == [
        datetime(2026, 5, 2, 3, 30, tzinfo=UTC),
        datetime(2026, 5, 3, 3, 30, tzinfo=UTC),
    ]


def test_the_first_field_is_seconds_and_steps_count_from_zero():
    assert occurrences("*/15 * * * * *", FRIDAY) == [
        datetime(2026, 5, 1, 10, 0, s, tzinfo=UTC) for s in (15, 30, 45)
    ]
    assert occurrences("5/20 0 * * * *", FRIDAY, 2) == [
        datetime(2026, 5, 1, 10, 0, 25, tzinfo=UTC),
        datetime(2026, 5, 1, 10, 0, 45, tzinfo=UTC),
    ]


def test_an_occurrence_is_strictly_after_the_given_time():
    exact = datetime(2026, 5, 2, 3, 30, tzinfo=UTC)
    assert parse_schedule("0 30 3 * * *").next_after(exact) == exact + timedelta(days=1)


def test_named_weekday_ranges_skip_the_weekend():
    assert occurrences("0 0 9 * * MON-FRI", FRIDAY, 2) == [
        datetime(2026, 5, 4, 9, tzinfo=UTC),  # Monday
        datetime(2026, 5, 5, 9, tzinfo=UTC),
    ]


def test_lists_ranges_and_named_months_combine():
    assert occurrences("0 0 8,17 1-2 JAN,jul *", FRIDAY, 3) == [
        datetime(2026, 7, 1, 8, tzinfo=UTC),
        datetime(2026, 7, 1, 17, tzinfo=UTC),
        datetime(2026, 7, 2, 8, tzinfo=UTC),
    ]


def test_day_and_weekday_must_both_match_as_in_ncrontab():
    # The 13th that is a Friday: November 2026.
    assert parse_schedule("0 0 0 13 * 5").next_after(FRIDAY) == datetime(2026, 11, 13, tzinfo=UTC)


def test_sunday_is_zero_and_seven():
    assert occurrences("0 0 0 * * 0", FRIDAY, 1) == occurrences("0 0 0 * * 7", FRIDAY, 1)
    assert occurrences("0 0 0 * * SUN", FRIDAY, 1) == [datetime(2026, 5, 3, tzinfo=UTC)]


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("0 30 3 * *", "six"),
        ("0 30 3 * * * *", "six"),
        ("0 60 3 * * *", "minute"),
        ("0 0 20-10 * * *", "backwards"),
        ("*/0 * * * * *", "step"),
        ("0 0 0 * * FUNDAY", "day of week"),
        ("0 0 0 30 2 *", "no occurrence"),
    ],
)
def test_bad_schedules_are_refused_with_the_reason(expression, reason):
    with pytest.raises(ScheduleError, match=reason):
        parse_schedule(expression)


# --- indexing -----------------------------------------------------------------------------------


def product_index():
    return index_functions(fresh_function_app())


def test_product_cleanup_timer_is_indexed_with_its_daily_schedule():
    index = product_index()
    timers = {f.name: f for f in index.timer}
    cleanup = timers["operations_cleanup"]
    assert cleanup.schedule == "0 30 3 * * *" and cleanup.run_on_startup is False
    assert not [name for name in index.skipped if name.startswith("operations_cleanup")]
    assert resolve_schedule(cleanup).next_after(FRIDAY) == datetime(2026, 5, 2, 3, 30, tzinfo=UTC)


def test_product_parked_work_timer_runs_every_hour():
    timers = {f.name: f for f in product_index().timer}
    parked = timers["parked_work"]
    assert parked.schedule == "0 15 * * * *" and parked.run_on_startup is False
    assert resolve_schedule(parked).next_after(FRIDAY) == FRIDAY.replace(
        minute=15, second=0, microsecond=0
    )


def test_schedule_from_an_unset_app_setting_is_refused(monkeypatch):
    cleanup = next(f for f in product_index().timer if f.name == "operations_cleanup")
    tick = dataclasses.replace(cleanup, schedule="%DEVHOST_TEST_UNSET_SCHEDULE%")
    monkeypatch.delenv("DEVHOST_TEST_UNSET_SCHEDULE", raising=False)
    with pytest.raises(ScheduleError, match="DEVHOST_TEST_UNSET_SCHEDULE"):
        resolve_schedule(tick)


# --- a real devhost process -------------------------------------------------------------------


@pytest.fixture(scope="module")
def timer_host(tmp_path_factory, azurite):
    """The fixture app with a per-second tick, and a nightly run missed two days ago."""
    host = new_fixture_host(
        tmp_path_factory.mktemp("timers"), azurite, {"FIXTURE_TICK_SCHEDULE": "* * * * * *"}
    )
    missed = datetime.now(UTC) - timedelta(days=2)
    status = host.state / "timers" / "nightly.json"
    status.parent.mkdir(parents=True)
    status.write_text(
        json.dumps({"Last": (missed - timedelta(days=1)).isoformat(), "Next": missed.isoformat()})
    )
    host.start()
    try:
        yield host
    finally:
        host.stop()


def test_timer_fires_on_its_schedule_from_an_app_setting(timer_host):
    assert wait_until(lambda: len(timer_host.ticks("tick")) >= 3, timeout=20), timer_host.logs()
    ticks = timer_host.ticks("tick")
    assert not any(t["pastDue"] for t in ticks)
    # Each run is told when the next one is due: one distinct occurrence per run.
    nexts = [t["scheduleStatus"]["Next"] for t in ticks]
    assert len(set(nexts)) == len(nexts)


def test_run_on_startup_runs_once_when_the_host_starts(timer_host):
    assert wait_until(lambda: timer_host.ticks("at_startup"), timeout=20), timer_host.logs()
    (run,) = timer_host.ticks("at_startup")
    assert run["pastDue"] is False


def test_a_run_missed_while_the_host_was_down_runs_at_start_up_past_due(timer_host):
    assert wait_until(lambda: timer_host.ticks("nightly"), timeout=20), timer_host.logs()
    (run,) = timer_host.ticks("nightly")
    assert run["pastDue"] is True
    status = json.loads((timer_host.state / "timers" / "nightly.json").read_text())
    # The monitor now points at the coming 03:30 UTC.
    upcoming = datetime.fromisoformat(status["Next"])
    assert upcoming > datetime.now(UTC) and (upcoming.hour, upcoming.minute) == (3, 30)


def test_the_admin_api_runs_a_timer_now_with_the_master_key_only(timer_host):
    assert wait_until(lambda: timer_host.ticks("nightly"), timeout=20), timer_host.logs()
    url = f"{timer_host.url}/admin/functions/nightly"
    refused = [
        requests.post(url, json={"input": ""}, headers=headers, timeout=30).status_code
        for headers in ({}, {"x-functions-key": FIXTURE_KEY})
    ]
    unknown = requests.post(
        f"{timer_host.url}/admin/functions/no_such_function",
        headers={"x-functions-key": FIXTURE_MASTER_KEY},
        timeout=30,
    )

    accepted = requests.post(
        url, json={"input": ""}, headers={"x-functions-key": FIXTURE_MASTER_KEY}, timeout=30
    )

    assert refused == [401, 401] and unknown.status_code == 404
    assert accepted.status_code == 202
    assert wait_until(lambda: len(timer_host.ticks("nightly")) == 2, timeout=20), timer_host.logs()
    assert timer_host.ticks("nightly")[1]["pastDue"] is False
    line = "Executed 'Functions.nightly' (Succeeded, timer, manual)"
    assert wait_until(lambda: line in timer_host.logs(), timeout=20), timer_host.logs()


def test_a_bad_schedule_stops_the_devhost_with_the_reason(tmp_path, azurite):
    host = new_fixture_host(tmp_path, azurite, {"FIXTURE_TICK_SCHEDULE": "every minute"})
    with pytest.raises(ServiceError, match="timer tick: schedule 'every minute' has 2 fields"):
        host.start()
