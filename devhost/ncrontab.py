"""NCRONTAB schedules as the Functions timer trigger reads them: six fields, seconds first, UTC.

`{second} {minute} {hour} {day} {month} {day-of-week}`, each `*`, a number, a range `a-b`, a
step `*/n` / `a-b/n` / `a/n`, or a comma list of those; months and days of the week may be
named (`JAN`, `MON`), Sunday is 0 (7 is accepted too). As in NCrontab (the library the host
uses), a restricted day AND day of week must both match.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

MONTHS = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1
    )
}
WEEKDAYS = {name: n for n, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}
# (name, lowest, highest, names) for each of the six fields, in order.
FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("second", 0, 59, {}),
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day", 1, 31, {}),
    ("month", 1, 12, MONTHS),
    ("day of week", 0, 7, WEEKDAYS),
)
# A schedule that matches nothing (30 February) is noticed instead of searched for ever.
SEARCH_YEARS = 5


class ScheduleError(ValueError):
    """The expression is not a six-field NCRONTAB schedule."""


def _value(text: str, name: str, low: int, high: int, names: dict[str, int]) -> int:
    number = names.get(text.upper()) if not text.isdigit() else int(text)
    if number is None or not low <= number <= high:
        raise ScheduleError(f"{name} {text!r} is not in {low}-{high}")
    return number


def _field(text: str, name: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        span, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ScheduleError(f"{name} step {step_text!r} is not a positive number")
            step = int(step_text)
        if span == "*":
            first, last = low, high
        elif "-" in span:
            start, _, end = span.partition("-")
            first, last = (_value(v, name, low, high, names) for v in (start, end))
            if first > last:
                raise ScheduleError(f"{name} range {span!r} runs backwards")
        else:
            first = _value(span, name, low, high, names)
            # `a/n` means from a to the end in steps of n; a bare `a` is just a.
            last = high if step_text else first
        values.update(range(first, last + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class CronSchedule:
    """A parsed schedule; next_after() finds its occurrences."""

    expression: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday

    def _day_matches(self, t: datetime) -> bool:
        return t.day in self.days and (t.weekday() + 1) % 7 in self.weekdays

    def next_after(self, after: datetime) -> datetime:
        """The first occurrence strictly after `after` (naive times are taken as UTC)."""
        if after.tzinfo is None:
            after = after.replace(tzinfo=UTC)
        t = after.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
        limit = t + timedelta(days=366 * SEARCH_YEARS)
        while t < limit:
            # Each miss jumps to the start of the next month, day, hour, minute or second.
            if t.month not in self.months:
                year, month = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
                t = t.replace(year=year, month=month, day=1, hour=0, minute=0, second=0)
            elif not self._day_matches(t):
                t = t.replace(hour=0, minute=0, second=0) + timedelta(days=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=0, second=0) + timedelta(hours=1)
            elif t.minute not in self.minutes:
                t = t.replace(second=0) + timedelta(minutes=1)
            elif t.second not in self.seconds:
                t += timedelta(seconds=1)
            else:
                return t
        raise ScheduleError(f"{self.expression!r} has no occurrence in {SEARCH_YEARS} years")


def parse_schedule(expression: str) -> CronSchedule:
    """Parse a six-field NCRONTAB expression; raises ScheduleError saying what is wrong."""
    parts = expression.split()
    if len(parts) != len(FIELDS):
        raise ScheduleError(
            f"schedule {expression!r} has {len(parts)} fields; the timer trigger needs six: "
            "{second} {minute} {hour} {day} {month} {day-of-week}"
        )
    sets = [_field(p, *spec) for p, spec in zip(parts, FIELDS, strict=True)]
    weekdays = frozenset(d % 7 for d in sets[5])  # 7 is Sunday as well
    schedule = CronSchedule(expression, *sets[:5], weekdays)
    schedule.next_after(datetime(2000, 1, 1, tzinfo=UTC))  # refuses schedules that never fire
    return schedule
