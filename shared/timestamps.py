"""UTC timestamps as the records keep them: ISO 8601 with microseconds and Z (sortable text)."""

from __future__ import annotations

from datetime import UTC, datetime


def now_utc() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime | None) -> str | None:
    """A UTC timestamp as ISO 8601 with Z (sortable as text, used in filters)."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(value: str | None) -> datetime | None:
    """The datetime of an `iso()` text (None for None or empty); raises ValueError otherwise."""
    if not value:
        return None
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
