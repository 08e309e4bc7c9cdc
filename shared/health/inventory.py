"""Every delegated sign-in the vault holds: service accounts (token cache or password) and each
user of `user`-mode connections, found with one listing of the vault's secret names and tags."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from shared.errors import AppError
from shared.identity import secret_names
from shared.identity.connections import Connection, ConnectionRegistry
from shared.identity.secrets import SecretStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SignIn:
    """One delegated sign-in: its connection, whose it is, and the secret that holds it."""

    connection: Connection
    key: str  # the secret: token cache (tokc-/user-) or, for `password`, the credential
    kind: str  # service_account, password or user
    user: str | None = None

    @property
    def label(self) -> str:
        return f"{self.connection.name}/{self.user or 'service account'}"


def sign_in_key(connection: Connection, user: str | None) -> str | None:
    """The secret of the sign-in `user` (None: the service account) uses on `connection`."""
    if connection.mode == "user":
        return secret_names.user_cache_secret(connection.name, user) if user else None
    if connection.mode == "service_account":
        return connection.credential.secret_name
    return None


def sign_ins(secrets: SecretStore, registry: ConnectionRegistry) -> list[SignIn]:
    """Every delegated sign-in, by connection name. A connection that cannot be read is logged
    and skipped (the others are still checked). Raises SecretsUnavailable when the vault cannot
    be listed."""
    listing = secrets.list_properties()
    names = {n for n, _ in listing}
    connections = sorted(
        {
            tags[secret_names.TAG_CONNECTION]
            for name, tags in listing
            if name.startswith(secret_names.CONNECTION_PREFIX)
            and tags.get(secret_names.TAG_CONNECTION)
        }
    )
    found: list[SignIn] = []
    for name in connections:
        try:
            conn = registry.get(name)
        except AppError as exc:
            log.warning("sign-in health skips connection %s: %s", name, exc.code)
            continue
        if conn.mode == "service_account":
            kind = "password" if conn.credential.type == "password" else "service_account"
            found.append(SignIn(conn, conn.credential.secret_name, kind))
        elif conn.mode == "user":
            prefix = secret_names.user_cache_prefix(conn.name)
            for secret, tags in listing:
                user = tags.get("user")
                if (
                    secret.startswith(prefix)
                    and tags.get(secret_names.TAG_CONNECTION) == conn.name
                    and user
                    and secret in names
                ):
                    found.append(SignIn(conn, secret, "user", user))
    return found
