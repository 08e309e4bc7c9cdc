"""Injected faults: which requests fail, how (status, reset, delay, accept_then_drop,
drop_mid_body), and the response of a `status` fault."""

from __future__ import annotations

import random
import re
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from sandbox.web import Response

ACTIONS = frozenset({"status", "reset", "delay", "accept_then_drop", "drop_mid_body"})


class FaultSpecError(ValueError):
    """A fault specification is not valid."""


def _normalize(spec: dict[str, Any]) -> dict[str, Any]:
    """Validate a control-API fault spec and fill in defaults."""
    if not isinstance(spec, dict):
        raise FaultSpecError("a fault is a JSON object")
    action = spec.get("action", "status")
    if action not in ACTIONS:
        raise FaultSpecError(f"action must be one of {sorted(ACTIONS)}")
    path = spec.get("path") or ".*"
    try:
        re.compile(path)
    except re.error as exc:
        raise FaultSpecError(f"path is not a valid regular expression: {exc}") from exc
    method = (spec.get("method") or "*").upper()
    times = spec.get("times")
    if times is not None and (not isinstance(times, int) or times < 1):
        raise FaultSpecError("times must be a positive integer (or absent: unlimited)")
    probability = float(spec.get("probability", 1.0))
    if not 0.0 <= probability <= 1.0:
        raise FaultSpecError("probability must be between 0 and 1")
    status = int(spec.get("status", 503))
    if not 100 <= status <= 599:
        raise FaultSpecError("status must be an HTTP status code")
    retry_after = spec.get("retryAfter")
    delay_ms = int(spec.get("delayMs", 0) or 0)
    if delay_ms < 0:
        raise FaultSpecError("delayMs must not be negative")
    after_bytes = spec.get("afterBytes", 65536)
    if not isinstance(after_bytes, int) or isinstance(after_bytes, bool) or after_bytes < 0:
        raise FaultSpecError("afterBytes must be a non-negative integer")
    return {
        "id": spec.get("id") or uuid.uuid4().hex[:12],
        "method": method,
        "path": path,
        "action": action,
        "status": status,
        "retryAfter": retry_after,
        "delayMs": delay_ms,
        "afterBytes": after_bytes,
        "times": times,
        "remaining": times,
        "probability": probability,
        "applied": 0,
    }


class Faults:
    """Thread-safe list of fault specs; the first matching spec with `remaining` left applies."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._lock = threading.Lock()
        self._specs: list[dict[str, Any]] = []
        self._rng = rng or random.Random()

    def add(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Add a fault; returns it as stored (with its id). Raises FaultSpecError."""
        fault = _normalize(spec)
        fault["_re"] = re.compile(fault["path"])
        with self._lock:
            self._specs.append(fault)
        return _public(fault)

    def clear(self) -> None:
        with self._lock:
            self._specs.clear()

    def remove(self, fault_id: str) -> bool:
        with self._lock:
            before = len(self._specs)
            self._specs = [f for f in self._specs if f["id"] != fault_id]
            return len(self._specs) != before

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [_public(f) for f in self._specs]

    def take(self, method: str, path: str) -> dict[str, Any] | None:
        """The fault to apply to this request (counting it down), or None."""
        with self._lock:
            for fault in self._specs:
                if fault["method"] not in ("*", method.upper()):
                    continue
                if not fault["_re"].search(path):
                    continue
                if fault["remaining"] is not None and fault["remaining"] <= 0:
                    continue
                if fault["probability"] < 1.0 and self._rng.random() >= fault["probability"]:
                    continue
                if fault["remaining"] is not None:
                    fault["remaining"] -= 1
                fault["applied"] += 1
                return _public(fault)
        return None


def _public(fault: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fault.items() if not k.startswith("_")}


STATUS_CODES = {
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


def fault_response(
    path: str, fault: dict[str, Any], request_id: str, client_request_id: str | None
) -> Response:
    """The response of a `status` fault, shaped like every other error of the surface it hits.

    Token paths answer in Entra's shape (so MSAL reports it like a real outage) with trace and
    correlation ids; everything else in Graph's shape with `innerError` (request-id, date,
    client-request-id) and the request-id / client-request-id headers.
    """
    status = fault["status"]
    client = client_request_id or request_id
    headers = {"request-id": request_id, "x-ms-request-id": request_id, "client-request-id": client}
    if fault.get("retryAfter") is not None:
        headers["Retry-After"] = str(fault["retryAfter"])
    now = datetime.now(UTC)
    if "/oauth2/" in path:
        code = 90033 if status == 429 else 50001
        stamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
        body: dict[str, Any] = {
            "error": "temporarily_unavailable",
            "error_description": (
                f"AADSTS{code}: Injected sandbox fault (HTTP {status}). Trace ID: {request_id} "
                f"Correlation ID: {client} Timestamp: {stamp}"
            ),
            "error_codes": [code],
            "timestamp": stamp,
            "trace_id": request_id,
            "correlation_id": client,
        }
    else:
        body = {
            "error": {
                "code": STATUS_CODES.get(status, f"Http{status}"),
                "message": f"Injected sandbox fault (HTTP {status}).",
                "innerError": {
                    "date": now.strftime("%Y-%m-%dT%H:%M:%S"),
                    "request-id": request_id,
                    "client-request-id": client,
                },
            }
        }
    return Response.json(body, status, headers)
