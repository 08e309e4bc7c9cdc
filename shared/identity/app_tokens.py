"""App-only tokens (mode `app`): MSAL client credentials, one application per connection.

The application is rebuilt when the connection's credential rotates. One token request at a
time per connection, so a cold instance hit by N parallel requests asks Entra ID once.
MSAL is imported lazily (cold start).
"""

from __future__ import annotations

import threading
from typing import Any

from shared.identity.certificates import client_credential, fingerprint
from shared.identity.connections import Connection, ConnectionRegistry
from shared.identity.entra_errors import authority, entra_errors, raise_for_result


class AppTokenProvider:
    """Client-credentials tokens (mode `app`): one ConfidentialClientApplication per connection."""

    def __init__(self, registry: ConnectionRegistry) -> None:
        self.registry = registry
        self._apps: dict[tuple[str, str, str, str], Any] = {}
        self._lock = threading.Lock()
        # One token request at a time per connection: a cold instance hit by N parallel
        # requests asks Entra once, and the others find the token in MSAL's cache. Per
        # connection, so a slow or unreachable tenant never holds up the others.
        self._acquire_locks: dict[str, threading.Lock] = {}

    def _acquire_lock(self, connection: Connection) -> threading.Lock:
        with self._lock:
            return self._acquire_locks.setdefault(connection.name.casefold(), threading.Lock())

    def _app(self, connection: Connection, fresh: bool = False) -> Any:
        secret = self.registry.credential(connection)
        # The key includes a hash of the secret so a rotated secret gets a fresh application.
        key = (connection.name, connection.tenant_id, connection.client_id, fingerprint(secret))
        with self._lock:
            app = None if fresh else self._apps.get(key)
            if app is None:
                import msal

                app = msal.ConfidentialClientApplication(
                    connection.client_id,
                    client_credential=client_credential(connection, secret),
                    authority=authority(connection),
                    instance_discovery=connection.instance_discovery,
                )
                self._apps = {k: v for k, v in self._apps.items() if k[0] != connection.name}
                self._apps[key] = app
            return app

    def token(
        self, connection: Connection, user: str | None = None, *, force_refresh: bool = False
    ) -> str:
        """A cached or new app token; `force_refresh` starts with an empty cache (after a 401)."""
        with entra_errors(connection), self._acquire_lock(connection):
            result = self._app(connection, fresh=force_refresh).acquire_token_for_client(
                scopes=[connection.graph_scope]
            )
        if "access_token" not in result:
            raise_for_result(connection, result)
        return result["access_token"]
