"""Run the app's timer triggers on their NCRONTAB schedules, as the host's timer extension does.

One thread per timer function: it waits for the next occurrence (UTC, as the host without
WEBSITE_TIME_ZONE), calls the function with a func.TimerRequest, and never overlaps two runs of
the same function. `run_on_startup` calls it once when the devhost starts. The schedule monitor
(`use_monitor`, on by default for schedules a minute apart or more) keeps each timer's status in
`<state dir>/timers/<function>.json`, like the host's blob: an occurrence missed while the
devhost was down runs at start-up with `past_due` true. A schedule may be an app setting
(`%NAME%`), resolved from the environment as the host resolves it from app settings.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

# The worker's own class: func.TimerRequest is only the abstract interface.
from azure.functions.timer import TimerRequest

from devhost.app_index import IndexedFunction
from devhost.invoke import invoke
from devhost.ncrontab import CronSchedule, ScheduleError, parse_schedule

log = logging.getLogger("devhost.timers")

SETTING_REFERENCE = re.compile(r"^%(?P<name>[^%]+)%$")
# The host monitors schedules whose occurrences are at least this far apart (when useMonitor is
# not given): checking a per-second timer for missed runs would cost more than it saves.
MONITOR_MIN_INTERVAL = timedelta(minutes=1)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def resolve_schedule(function: IndexedFunction) -> CronSchedule:
    """The function's schedule, with a `%SETTING%` reference read from os.environ."""
    expression = function.schedule
    reference = SETTING_REFERENCE.match(expression)
    if reference:
        name = reference.group("name")
        expression = os.environ.get(name, "")
        if not expression:
            raise ScheduleError(f"timer {function.name}: schedule setting {name!r} is not set")
    try:
        return parse_schedule(expression)
    except ScheduleError as exc:
        raise ScheduleError(f"timer {function.name}: {exc}") from exc


def _iso(value: datetime | None) -> str:
    return (value or datetime.min.replace(tzinfo=UTC)).isoformat()


class TimerListener:
    """Calls one timer-trigger function on its schedule until stopped."""

    def __init__(
        self,
        function: IndexedFunction,
        root: Path,
        state_dir: Path,
        *,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.function = function
        self.root = root
        self.schedule = resolve_schedule(function)
        self.clock = clock
        self.status_file = state_dir / "timers" / f"{function.name}.json"
        if function.use_monitor is None:
            first = self.schedule.next_after(clock())
            self.use_monitor = self.schedule.next_after(first) - first >= MONITOR_MIN_INTERVAL
        else:
            self.use_monitor = function.use_monitor
        self._stop = threading.Event()
        # Set by stop() and trigger(): the schedule's wait wakes up for either.
        self._wake = threading.Event()
        self._manual = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"timer-{function.name}")
        self._thread.daemon = True
        self._last: datetime | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop scheduling and wait up to `timeout` for a running invocation."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def trigger(self) -> None:
        """Run the function once now, on this timer's thread (after a run in progress, never
        alongside it), as the host's `POST /admin/functions/{name}` does."""
        self._manual.set()
        self._wake.set()

    def _load_status(self) -> dict[str, datetime] | None:
        try:
            raw = json.loads(self.status_file.read_text(encoding="utf-8"))
            return {key: datetime.fromisoformat(raw[key]) for key in ("Last", "Next")}
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:  # a damaged file only loses history
            log.warning(
                "timer %s: ignoring unreadable %s: %s", self.function.name, self.status_file, exc
            )
            return None

    def _save_status(self, next_run: datetime) -> None:
        if not self.use_monitor:
            return
        self.status_file.parent.mkdir(parents=True, exist_ok=True)
        status = {
            "Last": _iso(self._last),
            "Next": _iso(next_run),
            "LastUpdated": _iso(self.clock()),
        }
        tmp = self.status_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(status), encoding="utf-8")
        tmp.replace(self.status_file)

    def _fire(self, occurrence: datetime, *, past_due: bool, manual: bool = False) -> None:
        next_run = self.schedule.next_after(max(occurrence, self.clock()))
        request = TimerRequest(
            past_due=past_due,
            schedule_status={
                "Last": _iso(self._last),
                "Next": _iso(next_run),
                "LastUpdated": _iso(self.clock()),
            },
            schedule={"AdjustForDST": True},
        )
        name = self.function.name
        try:
            invoke(self.function, request, self.root)
            how = "manual" if manual else f"past due {past_due}"
            log.info("Executed 'Functions.%s' (Succeeded, timer, %s)", name, how)
        except Exception:
            # No retries for timers (as in the host): the next occurrence is the next try.
            log.exception("Executed 'Functions.%s' (Failed, timer)", name)
        if not manual:
            self._last = occurrence

    def _run(self) -> None:
        now = self.clock()
        status = self._load_status() if self.use_monitor else None
        if status:
            self._last = status["Last"]
        if status and status["Next"] <= now:
            log.info("timer %s missed %s: running it now", self.function.name, status["Next"])
            self._fire(status["Next"], past_due=True)
        elif self.function.run_on_startup:
            self._fire(now, past_due=False)
        while not self._stop.is_set():
            now = self.clock()
            next_run = self.schedule.next_after(now)
            self._save_status(next_run)
            # Waits until the wall clock reaches the occurrence; a wake-up a little early waits
            # the rest, so one occurrence never runs twice.
            while (rest := (next_run - self.clock()).total_seconds()) > 0:
                self._wake.wait(rest)
                self._wake.clear()
                if self._stop.is_set():
                    return
                if self._manual.is_set():
                    self._manual.clear()
                    self._fire(self.clock(), past_due=False, manual=True)
            self._fire(next_run, past_due=False)
