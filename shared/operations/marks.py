"""Receipts, categories and the follow-up flag as Graph message properties (pure).

Shared by every operation that writes them on a message (send, draft, reply, forward, and a
move that marks what it moved): the request side is validated by shared.api.validation
(`check_categories`, `check_flag`), this module only turns it into Graph's shapes.
"""

from __future__ import annotations

from typing import Any

from shared.models import DateTimeTimeZone, Flag


def graph_when(value: DateTimeTimeZone) -> dict[str, str]:
    """Graph's dateTimeTimeZone."""
    return {"dateTime": value.date_time, "timeZone": value.time_zone}


def graph_flag(flag: str | Flag) -> dict[str, Any]:
    """Graph's followupFlag for a status ("flagged") or a full Flag."""
    if isinstance(flag, str):
        return {"flagStatus": flag}
    out: dict[str, Any] = {"flagStatus": flag.flag_status}
    for key, when in (
        ("startDateTime", flag.start_date_time),
        ("dueDateTime", flag.due_date_time),
        ("completedDateTime", flag.completed_date_time),
    ):
        if when is not None:
            out[key] = graph_when(when)
    return out


def graph_marks(
    *,
    categories: list[str] | None = None,
    flag: str | Flag | None = None,
    is_read_receipt_requested: bool | None = None,
    is_delivery_receipt_requested: bool | None = None,
    is_read: bool | None = None,
) -> dict[str, Any]:
    """The message properties for the marks given (None: left out, so Graph keeps its own)."""
    out: dict[str, Any] = {}
    if categories is not None:
        out["categories"] = list(categories)
    if flag is not None:
        out["flag"] = graph_flag(flag)
    if is_read_receipt_requested is not None:
        out["isReadReceiptRequested"] = is_read_receipt_requested
    if is_delivery_receipt_requested is not None:
        out["isDeliveryReceiptRequested"] = is_delivery_receipt_requested
    if is_read is not None:
        out["isRead"] = is_read
    return out


def merged_categories(current: list[str], added: list[str]) -> list[str]:
    """`current` plus the `added` ones it does not have yet (case-insensitive, as Outlook
    compares them; in order)."""
    out = list(current)
    seen = {c.casefold() for c in out}
    for name in added:
        if name.casefold() not in seen:
            seen.add(name.casefold())
            out.append(name)
    return out
