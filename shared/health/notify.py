"""Events to a connection's `notifyUrl`: `signin.needs_sign_in`, `signin.expiring`,
`operation.parked`, signed exactly like callbacks (RFC 9421, the connection's signing key).

The URL passes the callback rules (https, its host on `callbackUrlHosts`, port 443, no private
address unless the connection allows private hosts, the peer checked after connecting) each time
an event goes out. A delivery that fails after its retries is logged; the state change it was
about is recorded either way, so the next change is announced again. Never a token or secret in
an event: the sign-in link or the admin command, and the reason.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from shared.errors import AppError, ValidationFailed
from shared.identity.connections import Connection, ConnectionRegistry
from shared.timestamps import iso, now_utc
from shared.urlsafety import redact_url
from shared.work.callbacks import check_callback_url, deliver

log = logging.getLogger(__name__)


def event(kind: str, connection: str, **data: Any) -> dict[str, Any]:
    """One event body: `type`, a unique `id`, `time`, `connection` and what it is about."""
    body = {"type": kind, "id": str(uuid.uuid4()), "time": iso(now_utc()), "connection": connection}
    body.update({k: v for k, v in data.items() if v is not None})
    return body


class Notifier:
    """Delivers events to connections' notifyUrl (built once per process by the Runtime)."""

    def __init__(
        self, connections: ConnectionRegistry, *, guarded_session: Any, plain_session: Any
    ) -> None:
        self.connections = connections
        self.guarded_session = guarded_session
        self.plain_session = plain_session

    def send(self, connection: Connection, body: dict[str, Any]) -> dict[str, Any] | None:
        """POST `body` to the connection's notifyUrl; the delivery outcome (None: no URL)."""
        url = connection.notify_url
        if not url:
            return None
        try:
            secret = self.connections.signing_key(connection)
            if not secret:
                outcome = {"status": "failed", "attempts": 0, "reason": "no signing key"}
            else:
                check_callback_url(url, connection)
                private = connection.allow_private_attachment_hosts
                session = self.plain_session if private else self.guarded_session
                outcome = deliver(url, body, secret, key_id=connection.name, session=session)
        except ValidationFailed:
            outcome = {"status": "failed", "attempts": 0, "reason": "URL not allowed"}
        except AppError as exc:
            outcome = {"status": "failed", "attempts": 0, "reason": exc.code}
        if outcome["status"] != "delivered":
            log.warning(
                "%s event for connection %s not delivered to %s: %s",
                body.get("type"),
                connection.name,
                redact_url(url),
                outcome.get("reason") or outcome.get("httpStatus"),
            )
        return outcome
