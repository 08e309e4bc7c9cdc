"""One structured log line per operation: who, what, outcome, duration, Graph request-ids.

Never a secret, token or mail body; mail addresses are masked unless MASK_ADDRESSES_IN_LOGS is
false (they are personal data).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from shared.errors import AppError

logger = logging.getLogger("exchange_processor.operations")


def mask_address(address: str) -> str:
    """`anna@contoso.test` → `a***@contoso.test` (the domain helps support; the person not)."""
    local, sep, domain = address.partition("@")
    if not sep:
        return "***"
    return f"{local[:1]}***@{domain}"


@dataclass
class OperationRecord:
    """Fields of the log line; the operation fills in what it learns."""

    operation_id: str
    operation: str
    connection: str | None = None
    mask: bool = True
    fields: dict[str, Any] = field(default_factory=dict)
    request_ids: list[str] = field(default_factory=list)
    # Set by operation_log; `deferred`: the answer outlives the block (a streamed file), so the
    # line of a block that succeeded waits for finish().
    started: float = 0.0
    deferred: bool = False

    def address(self, key: str, value: str | None) -> None:
        if value:
            self.fields[key] = mask_address(value) if self.mask else value


def format_line(record: OperationRecord, outcome: str, duration_ms: float) -> str:
    """The JSON log line (pure, so tests can check what is and is not in it)."""
    line = {
        "event": "operation",
        "operationId": record.operation_id,
        "operation": record.operation,
        "connection": record.connection,
        "outcome": outcome,
        "durationMs": round(duration_ms, 1),
        "graphRequestIds": record.request_ids[-20:],
        **record.fields,
    }
    return json.dumps(line, separators=(",", ":"), default=str)


def emit(record: OperationRecord, outcome: str, duration_ms: float) -> None:
    """Log the line for an operation that ended elsewhere (the queue worker)."""
    level = logging.ERROR if outcome == "internal_error" else logging.INFO
    logger.log(level, format_line(record, outcome, duration_ms))


@contextmanager
def operation_log(record: OperationRecord) -> Iterator[OperationRecord]:
    """Time the block and log one line: outcome `succeeded` or the error code."""
    start = record.started = time.perf_counter()
    outcome = "succeeded"
    try:
        yield record
    except AppError as exc:
        outcome = exc.code
        if exc.graph and exc.graph.request_id and exc.graph.request_id not in record.request_ids:
            record.request_ids.append(exc.graph.request_id)
        raise
    except BaseException:
        outcome = "internal_error"
        raise
    finally:
        if not (record.deferred and outcome == "succeeded"):
            emit(record, outcome, (time.perf_counter() - start) * 1000)


def finish(record: OperationRecord, outcome: str) -> None:
    """Log the line of a deferred operation once its answer has ended (timed from its start)."""
    emit(record, outcome, (time.perf_counter() - record.started) * 1000)
