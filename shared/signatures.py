"""HMAC-SHA256 signatures over "timestamp.body" for outgoing callbacks and incoming webhooks.

The signed string is the Unix timestamp (decimal seconds), a dot, then the exact body bytes.
Headers: `X-Signature-Timestamp: <timestamp>` and `X-Signature: sha256=<lower-case hex>`.
A receiver recomputes the HMAC with the connection's secret, compares in constant time and
refuses timestamps more than 5 minutes away from its clock (replays). Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

TIMESTAMP_HEADER = "X-Signature-Timestamp"
SIGNATURE_HEADER = "X-Signature"
SCHEME = "sha256"
MAX_SKEW_SECONDS = 300


class SignatureInvalid(Exception):
    """The signature is missing, malformed, stale or wrong (the message says which)."""


def signing_secret_name(connection_secret: str) -> str:
    """Key Vault name of a connection's signing secret: `connection-<slug>-signing-key`."""
    return f"{connection_secret}-signing-key"


def compute(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of `timestamp.body` with `secret`."""
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, *, now: float | None = None) -> dict[str, str]:
    """The two headers that sign `body` at time `now` (default: the current time)."""
    timestamp = int(time.time() if now is None else now)
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: f"{SCHEME}={compute(secret, timestamp, body)}",
    }


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # plain dicts are case-sensitive; HTTP header names are not
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def verify(
    secret: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None
) -> None:
    """Raise SignatureInvalid unless `headers` sign `body` with `secret` within 5 minutes."""
    raw_ts = _header(headers, TIMESTAMP_HEADER)
    raw_sig = _header(headers, SIGNATURE_HEADER)
    if not raw_ts or not raw_sig:
        raise SignatureInvalid(f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are required.")
    try:
        timestamp = int(raw_ts.strip())
    except ValueError:
        raise SignatureInvalid(f"{TIMESTAMP_HEADER} must be Unix seconds.") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > MAX_SKEW_SECONDS:
        raise SignatureInvalid("The signature timestamp is more than 5 minutes off.")
    scheme, _, given = raw_sig.strip().partition("=")
    if scheme != SCHEME or not given:
        raise SignatureInvalid(f"{SIGNATURE_HEADER} must look like sha256=<hex>.")
    expected = compute(secret, timestamp, body)
    if not hmac.compare_digest(expected, given.lower()):
        raise SignatureInvalid("The signature does not match the body.")
