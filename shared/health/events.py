"""The structured log lines of sign-in health, parked work and permission audits (one JSON line
each, on logger `exchange_processor.signins`), which infra's alert rules and workbook read.

Never a token, secret or mail content; user addresses are masked unless MASK_ADDRESSES_IN_LOGS is
false. Pure formatting plus one `logging` call.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from shared.oplog import mask_address

logger = logging.getLogger("exchange_processor.signins")

# Event names (the `event` field): the alert rules and the workbook filter on them.
SIGNIN_HEALTH = "signin.health"  # one per sign-in per run: the workbook's "days left"
SIGNIN_STATE = "signin.state"  # one per state change: the sign-in alert
PARKED_OVERDUE = "operation.parked_overdue"  # once per operation parked too long: the alert
PERMISSION_AUDIT = "permission.audit"  # one per failed audit check: the audit alert


def address(value: str | None, mask: bool) -> str | None:
    """A user address as the log shows it (masked unless MASK_ADDRESSES_IN_LOGS is false)."""
    if not value:
        return None
    return mask_address(value) if mask else value


def format_line(event: str, **fields: Any) -> str:
    """The JSON line (pure, so tests can run the alert queries on exactly this)."""
    line = {"event": event, **{k: v for k, v in fields.items() if v is not None}}
    return json.dumps(line, separators=(",", ":"), default=str)


def emit(event: str, *, level: int = logging.INFO, **fields: Any) -> str:
    """Log one line; returns it."""
    line = format_line(event, **fields)
    logger.log(level, line)
    return line
