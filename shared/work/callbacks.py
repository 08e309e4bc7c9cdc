"""Signed callbacks: POST an operation's final status to its `callbackUrl`, with retries.

The body is JSON; the request is signed with the connection's signing key (Key Vault
`sign-<id>`) under the same RFC 9421 profile as incoming requests (shared/signatures.py), so a
receiver verifies it with the same library. A callbackUrl is accepted only on a connection that
has a signing key, and once the operation is final only its query-less form is kept (a SAS
token in it must not sit in the table for the retention period). Only https URLs whose
host is on the connection's `callbackUrlHosts` are used; private and loopback addresses are
refused unless the connection allows private hosts (as for attachment URLs), and so is port
other than 443; the address each connection reaches is checked again (shared.urlsafety's
guarded session). Redirects are not followed; proxies and .netrc come only from
shared.sessions.environment_session. A callback that still fails after its retries is
recorded on the operation. `FinalCallbacks` is the lifecycle's `on_final` (built by
shared.runtime).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec

from shared.errors import Detail, ValidationFailed
from shared.identity.connections import Connection, ConnectionRegistry
from shared.models import CallbackReceipt
from shared.signatures import sign
from shared.urlsafety import check_attachment_url, forbidden_peer_in, redact_url
from shared.work.record import Operation
from shared.work.store import OperationStore

log = logging.getLogger(__name__)

ATTEMPTS = 4
BACKOFF_START = 0.5
TIMEOUT_SECONDS = 10.0


def check_callback_url(
    url: str,
    connection: Connection,
    *,
    has_signing_key: bool = True,
    resolve: Callable[[str, int], list[str]] | None = None,
) -> None:
    """Raise ValidationFailed (field `callbackUrl`) unless the connection allows `url` and can
    sign the callback (it has a signing key); `resolve` is the DNS lookup (the system's when
    None)."""
    if not has_signing_key:
        raise ValidationFailed(
            "The callback URL cannot be used with this connection.",
            details=[
                Detail(
                    "callbackUrl",
                    f"connection {connection.name!r} has no signing key to sign callbacks with; "
                    "an admin creates one with `python -m admin connections add`",
                )
            ],
        )
    try:
        check_attachment_url(
            url,
            field="callbackUrl",
            allowed_hosts=connection.callback_url_hosts,
            allow_private=connection.allow_private_attachment_hosts,
            resolve=resolve,
        )
    except ValidationFailed as exc:
        details = [
            Detail(d.field, d.message.replace("attachmentUrlHosts", "callbackUrlHosts"))
            for d in exc.details
        ]
        raise ValidationFailed("The callback URL is not allowed.", details=details) from None


def payload(op: Operation) -> dict[str, Any]:
    """What DocuFlow receives: the operation's public status (no request content)."""
    public = op.public()
    keep = (
        "operationId",
        "operation",
        "status",
        "attempts",
        "finishedAt",
        "result",
        "error",
        "signInUrl",
        "adminCommand",
        "parkedUntil",
        "poisonQueue",
    )
    return {k: public[k] for k in keep if k in public}


def deliver(
    url: str,
    body: dict[str, Any],
    secret: str,
    *,
    key_id: str,
    session: Any,
    attempts: int = ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """POST `body` signed; retry 5xx/429/network errors with back-off. Returns the outcome.

    `session` is peer-checked (shared.urlsafety.guarded_session) unless the connection allows
    private hosts.
    """
    import requests

    http = session
    data = msgspec.json.encode(body)
    outcome: dict[str, Any] = {"status": "failed", "attempts": 0}
    for attempt in range(attempts):
        outcome["attempts"] = attempt + 1
        # A fresh signature (created, nonce) per try: a retry minutes later must not look stale
        # or like a replay to a receiver that remembers nonces.
        plain = {"Content-Type": "application/json"}
        headers = {**plain, **sign(secret, key_id, "POST", url, plain, data)}
        try:
            resp = http.post(
                url, data=data, headers=headers, timeout=TIMEOUT_SECONDS, allow_redirects=False
            )
            outcome["httpStatus"] = resp.status_code
            resp.close()
            if resp.status_code < 300:
                outcome["status"] = "delivered"
                return outcome
            if resp.status_code < 500 and resp.status_code != 429:
                return outcome  # the receiver refused it; asking again changes nothing
        except requests.RequestException as exc:
            outcome["httpStatus"] = None
            if forbidden_peer_in(exc):
                outcome["reason"] = "the host resolved to an internal address"
                return outcome
            log.warning(
                "callback attempt %d to %s failed: %s",
                attempt + 1,
                redact_url(url),
                type(exc).__name__,
            )
        if attempt + 1 < attempts:
            sleep(BACKOFF_START * (2**attempt))
    return outcome


class FinalCallbacks:
    """Delivers an operation's status to its callbackUrl and records the receipt on it (the
    lifecycle's `on_final`; built once per process by shared.runtime)."""

    def __init__(
        self,
        connections: ConnectionRegistry,
        store: OperationStore,
        *,
        guarded_session: Any,
        plain_session: Any,
        resolve: Callable[[str, int], list[str]] | None = None,
    ) -> None:
        self.connections = connections
        self.store = store
        self.guarded_session = guarded_session
        self.plain_session = plain_session
        self.resolve = resolve

    def __call__(self, op: Operation) -> None:
        op.callback = msgspec.convert(self._deliver(op), CallbackReceipt)
        current = self.store.get(op.operation_id)
        if current is None:
            return
        current.callback = op.callback
        if current.terminal and current.callback_url:
            # Final: no more callbacks. Keep where it went, not the query (often a SAS token).
            current.callback_url = redact_url(current.callback_url)
        try:
            self.store.save(current)
        except Exception as exc:  # the status itself is recorded; only the receipt is lost
            log.warning(
                "could not record the callback of %s: %s", op.operation_id, type(exc).__name__
            )

    def _deliver(self, op: Operation) -> dict[str, Any]:
        url = op.callback_url or ""
        connection = self.connections.get(op.connection)
        secret = self.connections.signing_key(connection)
        if not secret:
            return {"status": "failed", "attempts": 0, "reason": "no signing key"}
        try:
            check_callback_url(url, connection, resolve=self.resolve)
        except ValidationFailed:
            return {"status": "failed", "attempts": 0, "reason": "URL not allowed"}
        private = connection.allow_private_attachment_hosts
        session = self.plain_session if private else self.guarded_session
        return deliver(url, payload(op), secret, key_id=connection.name, session=session)
