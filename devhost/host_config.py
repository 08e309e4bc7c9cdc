"""Read the parts of host.json the devhost honours: the HTTP route prefix and queue settings."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The Functions host's documented defaults (extensions.queues in host.json, bundle v4/v5).
DEFAULT_BATCH_SIZE = 16
DEFAULT_MAX_DEQUEUE_COUNT = 5
DEFAULT_MAX_POLLING_INTERVAL = 60.0
DEFAULT_VISIBILITY_TIMEOUT = 0.0
# Storage refuses to hand out more than 32 messages per GetMessages call.
MAX_BATCH_SIZE = 32

_TIMESPAN = re.compile(
    r"^(?:(?P<days>\d+)\.)?(?P<h>\d{1,2}):(?P<m>\d{1,2}):(?P<s>\d{1,2}(?:\.\d+)?)$"
)


class HostConfigError(ValueError):
    """host.json is not valid JSON or a setting has a value the host would reject."""


def parse_timespan(value: Any, setting: str) -> float:
    """Seconds in a .NET TimeSpan string ("00:00:02", "1.00:00:00") or a plain number of ms.

    Raises HostConfigError on anything else, naming the setting.
    """
    # host.json also accepts a number of milliseconds for the polling interval.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) / 1000.0
    match = _TIMESPAN.match(str(value).strip())
    if not match:
        raise HostConfigError(f"host.json {setting}: {value!r} is not a TimeSpan like 00:00:02")
    days = int(match["days"] or 0)
    return days * 86400 + int(match["h"]) * 3600 + int(match["m"]) * 60 + float(match["s"])


@dataclass(frozen=True)
class QueueOptions:
    """extensions.queues of host.json, in seconds and counts."""

    batch_size: int = DEFAULT_BATCH_SIZE
    new_batch_threshold: int = DEFAULT_BATCH_SIZE // 2
    max_polling_interval: float = DEFAULT_MAX_POLLING_INTERVAL
    visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT
    max_dequeue_count: int = DEFAULT_MAX_DEQUEUE_COUNT
    message_encoding: str = "base64"

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> QueueOptions:
        """Validate extensions.queues; raises HostConfigError on values the host would reject."""
        batch_size = int(raw.get("batchSize", DEFAULT_BATCH_SIZE))
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise HostConfigError(f"host.json batchSize must be 1..{MAX_BATCH_SIZE}")
        # The host's default threshold is half the batch size (per instance, one CPU).
        threshold = int(raw.get("newBatchThreshold", batch_size // 2))
        if threshold < 0:
            raise HostConfigError("host.json newBatchThreshold must not be negative")
        polling = parse_timespan(
            raw.get("maxPollingInterval", "00:01:00"), "extensions.queues.maxPollingInterval"
        )
        if polling < 0.1:
            raise HostConfigError("host.json maxPollingInterval must be at least 100 ms")
        visibility = parse_timespan(
            raw.get("visibilityTimeout", "00:00:00"), "extensions.queues.visibilityTimeout"
        )
        max_dequeue = int(raw.get("maxDequeueCount", DEFAULT_MAX_DEQUEUE_COUNT))
        if max_dequeue < 1:
            raise HostConfigError("host.json maxDequeueCount must be at least 1")
        encoding = str(raw.get("messageEncoding", "base64")).lower()
        if encoding not in {"base64", "none"}:
            raise HostConfigError("host.json messageEncoding must be base64 or none")
        return cls(batch_size, threshold, polling, visibility, max_dequeue, encoding)


@dataclass(frozen=True)
class HostConfig:
    """What the devhost takes from host.json."""

    route_prefix: str = "api"
    queues: QueueOptions = QueueOptions()


def load_host_config(root: Path) -> HostConfig:
    """host.json under `root` (defaults when there is none); raises HostConfigError if invalid."""
    path = root / "host.json"
    if not path.exists():
        return HostConfig()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HostConfigError(f"{path} is not readable JSON: {exc}") from exc
    extensions = data.get("extensions") or {}
    http = extensions.get("http") or {}
    prefix = str(http.get("routePrefix", "api")).strip("/")
    return HostConfig(prefix, QueueOptions.from_dict(extensions.get("queues") or {}))
