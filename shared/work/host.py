"""What the Functions host does with our queue messages, read from host.json and its override.

The lifecycle must agree with the host: it marks an operation `poisoned` on the dequeue the
host poisons its message after, and tests derive their wait bounds from the same numbers.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.settings import Settings

log = logging.getLogger(__name__)

# The host's defaults for extensions.queues (Azure Functions host 4.x).
DEFAULT_MAX_DEQUEUE_COUNT = 5
DEFAULT_VISIBILITY_TIMEOUT = 0.0
DEFAULT_MAX_POLLING_INTERVAL = 60.0
# Not resolved: a symlinked app root keeps its host.json.
APP_ROOT = Path(__file__).parent.parent.parent
_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d+))?$")


def timespan_seconds(value: str) -> float:
    """`[d.]hh:mm:ss[.fff]` (host.json's TimeSpan) in seconds; raises ValueError."""
    match = _TIMESPAN.match(value.strip())
    if not match:
        raise ValueError(f"not a timespan: {value!r}")
    days, hours, minutes, seconds, fraction = match.groups()
    total = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + int(seconds)
    return total + (float(f"0.{fraction}") if fraction else 0.0)


@dataclass(frozen=True)
class QueueHost:
    """The host's queue settings that the lifecycle and its tests depend on."""

    max_dequeue_count: int = DEFAULT_MAX_DEQUEUE_COUNT
    visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT
    max_polling_interval: float = DEFAULT_MAX_POLLING_INTERVAL


def _queues_section(root: Path) -> dict[str, Any]:
    try:
        config = json.loads((root / "host.json").read_text(encoding="utf-8"))
        section = config.get("extensions", {}).get("queues", {})
        return section if isinstance(section, dict) else {}
    except (OSError, ValueError, AttributeError):
        return {}


def queue_host(settings: Settings, root: Path | None = None) -> QueueHost:
    """The host's queue settings: the app-setting override of maxDequeueCount, else host.json
    (in `root`, AzureWebJobsScriptRoot, or this checkout), else the host's defaults."""
    base = root or (Path(settings.script_root) if settings.script_root else APP_ROOT)
    section = _queues_section(base)
    values: dict[str, Any] = {}
    try:
        if section.get("maxDequeueCount") is not None:
            values["max_dequeue_count"] = max(1, int(section["maxDequeueCount"]))
        if section.get("visibilityTimeout"):
            values["visibility_timeout"] = timespan_seconds(section["visibilityTimeout"])
        if section.get("maxPollingInterval"):
            values["max_polling_interval"] = timespan_seconds(section["maxPollingInterval"])
    except (TypeError, ValueError):
        log.warning("host.json extensions.queues is not what the host accepts; using defaults")
    if settings.queue_max_dequeue_count is not None:
        values["max_dequeue_count"] = settings.queue_max_dequeue_count
    return QueueHost(**values)
