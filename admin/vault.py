"""How the command line reaches Key Vault, and what it reads there (connections, cache states).

Configuration comes from the environment (the app's setting names, docs/configuration.md) or
from a local.settings.json given with --settings. Without KEY_VAULT_CREDENTIAL the command line
uses DefaultAzureCredential (e.g. `az login`), the usual way for an admin.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from shared.errors import AppError, UnknownConnection
from shared.identity import secret_names
from shared.identity.connections import Connection, connection_secret_name, parse_connection
from shared.identity.secrets import SecretStore, make_secret_client, set_secret_recovering
from shared.identity.token_cache import CacheState, read_state
from shared.settings import (
    KEY_VAULT_CREDENTIAL,
    KEY_VAULT_URL,
    Settings,
    apply_local_values,
    read_local_settings,
)


def load_settings(settings_file: Path | None, vault_url: str | None) -> Settings:
    """Settings from --settings (its Values go into the environment first) and --vault-url.

    Raises LocalSettingsError for an unusable file, AppError when no vault is given.
    """
    if settings_file is not None:
        apply_local_values(read_local_settings(settings_file).get("Values", {}))
    explicit: dict[str, Any] = {}
    if vault_url:
        explicit["key_vault_url"] = vault_url
    if not os.environ.get(KEY_VAULT_CREDENTIAL):
        explicit["key_vault_credential"] = "default"
    settings = Settings.load(**explicit)
    if not settings.key_vault_url:
        raise AppError(
            f"No Key Vault given: set {KEY_VAULT_URL}, or pass --vault-url or --settings."
        )
    return settings


class RecoveringSecretClient:
    """A SecretClient whose `set_secret` first recovers a soft-deleted secret of that name.

    Infra turns on soft delete with purge protection, so after `connections remove X` the
    names stay taken for the retention period; `add X` must bring them back, not fail with 409.
    Everything else is the SecretClient's own.
    """

    def __init__(self, client: Any) -> None:
        self._client = client

    def set_secret(self, name: str, value: str, **kwargs: Any) -> Any:
        return set_secret_recovering(self._client, name, value, **kwargs)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._client, attr)


class Vault:
    """The Key Vault of one deployment, as the command line needs it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = RecoveringSecretClient(make_secret_client(settings))
        # ttl=0: an admin wants what is stored now, not what a cache saw.
        self.store = SecretStore(lambda: self.client, ttl=0.0)
        self._health: dict[str, Any] | None = None
        self.health_problem: str | None = None

    def health_records(self) -> dict[str, Any]:
        """The app's sign-in health records by secret name (shared.health.store), read once;
        empty (and `health_problem` set) when the app's storage is not reachable from here."""
        if self._health is None:
            from shared.health.store import TableHealthStore
            from shared.settings import SIGNIN_HEALTH_TABLE
            from shared.work.table_store import make_table_client

            try:
                store = TableHealthStore(make_table_client(self.settings, SIGNIN_HEALTH_TABLE))
                self._health = {r.key: r for r in store.records()}
            except AppError as exc:
                self._health = {}
                self.health_problem = exc.message
        return self._health

    def connection(self, name: str) -> Connection:
        """Raises UnknownConnection."""
        from shared.identity.connections import ConnectionRegistry

        return ConnectionRegistry(self.store, self.settings).get(name)

    def stored_connection(self, name: str) -> Connection | None:
        """The connection as stored (no defaults filled in), or None when there is none."""
        try:
            self.connection(name)
        except UnknownConnection:
            return None
        return parse_connection(self.store.get(connection_secret_name(name)) or "")

    def signing_key(self, name: str) -> str | None:
        return self.store.get(secret_names.signing_key_secret(name))

    def connections(self) -> list[Connection]:
        """Every connection in the vault, by name (secrets that are not connections skipped)."""
        found: list[Connection] = []
        for props in self.client.list_properties_of_secrets():
            if not props.name.startswith(secret_names.CONNECTION_PREFIX):
                continue
            value = self.store.get(props.name)
            try:
                conn = parse_connection(value or "")
            except AppError:
                continue  # token caches and other JSON secrets
            if connection_secret_name(conn.name) == props.name:
                found.append(conn.with_defaults(self.settings))
        return sorted(found, key=lambda c: c.name.casefold())

    def user_cache_names(self, connection: Connection) -> list[str]:
        """The user sign-ins of exactly this connection (name prefix and owner tag agree)."""
        prefix = secret_names.user_cache_prefix(connection.name)
        return sorted(
            p.name
            for p in self.client.list_properties_of_secrets()
            if p.name.startswith(prefix)
            and (p.tags or {}).get(secret_names.TAG_CONNECTION) == connection.name
        )

    def remove(self, connection: Connection) -> list[str]:
        """Delete the connection and every secret it owns; returns the names deleted (the
        connection's own last). Owned means derived from its exact name (credential, signing
        key, token cache) or a user cache carrying its exact name as owner tag."""
        name = connection.name
        owned = [
            secret_names.credential_secret(name),
            secret_names.token_cache_secret(name),
            secret_names.signing_key_secret(name),
            *self.user_cache_names(connection),
        ]
        removed = [n for n in owned if self.delete(n)]
        self.delete(connection_secret_name(name))
        return [*removed, connection_secret_name(name)]

    def token_states(self, connection: Connection) -> list[tuple[str, CacheState]]:
        """(secret name, state) of each stored sign-in of the connection."""
        if connection.mode == "service_account" and connection.credential.type == "token_cache":
            name = connection.credential.secret_name
            return [(name, read_state(self.store, name))]
        if connection.mode == "user":
            return [(n, read_state(self.store, n)) for n in self.user_cache_names(connection)]
        return []

    def delete(self, name: str) -> bool:
        """Delete a secret (soft-delete where the vault has it); False when it did not exist."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            # The DELETE happens now; waiting for the soft-delete poller adds nothing here.
            self.client.begin_delete_secret(name)
        except ResourceNotFoundError:
            return False
        return True

    def close(self) -> None:
        self.client.close()
