"""Per-connection authorization of an incoming request: its RFC 9421 signature and nonce.

The function key only lets a caller reach the app; acting on a connection (or reading its
operations) takes that connection's signing key. A connection with `requireSignedRequests`
(the default) accepts a request only when it is signed with its key under our profile
(shared.signatures: keyid = the connection name; method, path, body digest and idempotency key
covered; fresh `created`) and its nonce was never used before (shared.api.replay, shared by all
instances). Raises `Unauthorized` (401), `UnknownConnection`, `SecretsUnavailable`,
`StorageUnavailable`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.errors import Unauthorized


def authorize(
    runtime: Any,
    connection_name: str,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    nonces: Any = None,
) -> None:
    """Return when the request may act on `connection_name`; raise Unauthorized otherwise."""
    import time

    from shared.signatures import REPLAY_WINDOW_SECONDS, SignatureInvalid, verify

    connection = runtime.connections.get(connection_name)
    if not connection.require_signed_requests:
        return
    key = runtime.connections.signing_key(connection)
    if not key:
        # Misconfigured: refusing is safer than accepting unsigned requests silently.
        raise Unauthorized(
            f"Connection {connection.name!r} requires signed requests but has no signing key; "
            "an admin runs `python -m admin connections add` to create one."
        )
    try:
        verified = verify(
            method,
            url,
            headers,
            body,
            lambda key_id: key if key_id == connection.name else None,
        )
    except SignatureInvalid as exc:
        raise Unauthorized(f"Request signature rejected: {exc}") from None
    if nonces is None:
        nonces = runtime.nonces
    # Remembered for as long as this signature could pass the `created` window anywhere.
    lifetime = max(verified.created + REPLAY_WINDOW_SECONDS - time.time(), 1.0)
    if not nonces.first_use(verified.key_id, verified.nonce, expires_in=lifetime):
        raise Unauthorized("Request signature rejected: this nonce was used before (a replay).")
