"""Delegated tokens: a service account (mode `service_account`) or each user (mode `user`).

Both keep their MSAL cache in Key Vault (shared.identity.token_cache): loaded once per process,
refreshed silently (MSAL treats a token with under 5 minutes left as expired, so tokens are
refreshed before use), written back only when a refresh rotated the refresh token. A lost
sign-in is `ReauthRequired`: with the admin command (service account) or the user's sign-in
URL. MSAL is imported lazily (cold start).
"""

from __future__ import annotations

import logging
import shlex
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from shared.errors import Detail, ReauthRequired, ValidationFailed
from shared.identity import secret_names, signin
from shared.identity.certificates import client_credential, fingerprint
from shared.identity.connections import Connection, ConnectionRegistry
from shared.identity.entra_errors import (
    authority,
    entra_errors,
    error_text,
    needs_reauth,
    raise_for_result,
)
from shared.identity.secrets import SecretStore
from shared.identity.token_cache import KeyVaultTokenCache
from shared.settings import Settings

log = logging.getLogger(__name__)

# How long a "must sign in again" answer is reused per sign-in (connection, or connection and
# user) before Entra is asked again; a new sign-in stored by this process, or seen in Key
# Vault, ends it at once.
REAUTH_MEMORY_SECONDS = 30.0
# Meanwhile every call still re-reads the sign-in from Key Vault (one read, no Entra request),
# so a sign-in stored by another instance or the admin CLI counts at once.


def allow_sandbox_user_realm(connection: Connection) -> None:
    """Let MSAL's password grant skip user-realm discovery for a loopback (sandbox) authority.

    MSAL asks https://<authority host without its port>/common/userrealm first; for a sandbox
    on a non-443 port that is a refused connection. Only loopback hosts are added, so a real
    tenant always gets Microsoft's discovery (docs/connections.md).
    """
    host = urlsplit(connection.authority_host).hostname or ""
    if host in ("127.0.0.1", "localhost"):
        from msal.authority import Authority

        Authority._domains_without_user_realm_discovery.add(host)


class _DelegatedProvider:
    """What service_account and user modes share: Key Vault caches and silent acquisition."""

    def __init__(self, registry: ConnectionRegistry, secrets: SecretStore, settings: Settings):
        self.registry = registry
        self.secrets = secrets
        self.settings = settings
        self._caches: dict[tuple[str, str], KeyVaultTokenCache] = {}
        self._apps: dict[tuple[str, str, str], Any] = {}
        self._lock = threading.Lock()

    def cache(self, secret_name: str, tags: dict[str, str] | None = None) -> KeyVaultTokenCache:
        """The process's one cache object for a secret (created on first use, loaded lazily)."""
        with self._lock:
            key = ("cache", secret_name)
            cache = self._caches.get(key)
            if cache is None:
                cache = self._caches[key] = KeyVaultTokenCache(self.secrets, secret_name, tags)
            return cache

    def _silent(
        self,
        app: Any,
        connection: Connection,
        username: str | None,
        force_refresh: bool,
        identity: tuple[str, str] | None = None,
    ) -> dict[str, Any] | None:
        if identity is not None:
            # Bound by tenant and object id (immutable), not by the UPN (which can change).
            tid, oid = identity
            accounts = [
                a
                for a in app.get_accounts()
                if str(a.get("realm", "")).casefold() == tid.casefold()
                and str(a.get("local_account_id", "")).casefold() == oid.casefold()
            ]
        else:
            accounts = app.get_accounts(username=username) if username else app.get_accounts()
        if not accounts:
            return None
        with entra_errors(connection):
            return app.acquire_token_silent_with_error(
                connection.scopes(), account=accounts[0], force_refresh=force_refresh
            )

    def _acquire(
        self,
        app: Any,
        cache: KeyVaultTokenCache,
        connection: Connection,
        username: str | None,
        force_refresh: bool,
        reauth: Callable[[str], ReauthRequired],
    ) -> str:
        """Silent token from the cache; on failure re-read Key Vault once (someone may have
        signed in again on another instance) before asking a person to sign in."""
        with cache.lock:
            # A sign-in refused moments ago: answer without asking Entra again, unless Key
            # Vault now holds another sign-in. That look happens on every call: a sign-in stored
            # by another instance or by the admin CLI is invisible to this process otherwise,
            # and the parked work it re-queues arrives here within a second of it.
            refused = cache.recent_refusal()
            if refused is not None and not cache.load(force=True):
                raise reauth(refused)
            cache.load()
            result = self._silent(app, connection, username, force_refresh, cache.identity())
            if (result is None or "access_token" not in result) and cache.load(force=True):
                result = self._silent(app, connection, username, force_refresh, cache.identity())
            if result is not None and "access_token" in result:
                cache.save_if_changed(account=username or cache.state().account)
                return result["access_token"]
            if result is None:
                cache.remember_refusal("no sign-in is stored", REAUTH_MEMORY_SECONDS)
                raise reauth("no sign-in is stored")
            if needs_reauth(result):
                log.warning(
                    "sign-in of connection %s needs a person: %s",
                    connection.name,
                    error_text(result),
                )
                cache.remember_refusal(error_text(result), REAUTH_MEMORY_SECONDS)
                raise reauth(error_text(result))
            raise_for_result(connection, result)
            raise AssertionError("unreachable")


def admin_command(connection: str) -> str:
    """The command an admin runs to sign the service account in again."""
    return f"python -m admin connections authenticate {shlex.quote(connection)}"


class ServiceAccountTokenProvider(_DelegatedProvider):
    """Delegated tokens of one service account (mode `service_account`).

    `token_cache` (normal): a public client whose MSAL cache an admin stored with the device
    code flow (`python -m admin connections authenticate`). `password` (discouraged, legacy):
    ROPC with the account's password from Key Vault; only for tenants that exclude the account
    from MFA by network location. Either way a lost sign-in is `ReauthRequired(admin_command)`.
    """

    def app(self, connection: Connection, cache: Any = None) -> Any:
        """The PublicClientApplication for a connection (one per process and cache)."""
        key = ("sa", connection.name, f"{connection.tenant_id}/{connection.client_id}")
        with self._lock:
            app = self._apps.get(key)
            if app is None or (cache is not None and app.token_cache is not cache):
                import msal

                kwargs: dict[str, Any] = {"token_cache": cache} if cache is not None else {}
                app = msal.PublicClientApplication(
                    connection.client_id,
                    authority=authority(connection),
                    instance_discovery=connection.instance_discovery,
                    **kwargs,
                )
                self._apps[key] = app
            return app

    def _reauth(self, connection: Connection) -> Callable[[str], ReauthRequired]:
        command = admin_command(connection.name)

        def make(reason: str) -> ReauthRequired:
            return ReauthRequired(
                f"The service account of connection {connection.name!r} must sign in again "
                f"({reason}); an admin runs: {command}",
                admin_command=command,
                connection=connection.name,
            )

        return make

    def token(
        self, connection: Connection, user: str | None = None, *, force_refresh: bool = False
    ) -> str:
        if connection.credential.type == "password":
            return self._password_token(connection, force_refresh)
        cache = self.cache(
            connection.credential.secret_name, secret_names.tags("token-cache", connection.name)
        )
        app = self.app(connection, cache.cache)
        return self._acquire(
            app,
            cache,
            connection,
            connection.account or None,
            force_refresh,
            self._reauth(connection),
        )

    def _password_token(self, connection: Connection, force_refresh: bool) -> str:
        """ROPC: the cache stays in memory (the password can always get a new refresh token)."""
        app = self.app(connection)
        with self._lock:
            result = (
                None if force_refresh else self._silent(app, connection, connection.account, False)
            )
        if result is None or "access_token" not in result:
            password = self.registry.credential(connection)
            allow_sandbox_user_realm(connection)
            with entra_errors(connection):
                result = app.acquire_token_by_username_password(
                    connection.account, password, scopes=connection.scopes()
                )
        if "access_token" in result:
            return result["access_token"]
        if needs_reauth(result):
            # No command can fix this one: the tenant demands MFA (or the password changed).
            raise ReauthRequired(
                f"The service account of connection {connection.name!r} was refused "
                f"({error_text(result)}): the password option cannot answer MFA. Exclude the "
                "account from MFA for this service's addresses, update its password in Key "
                "Vault, or switch the connection to the device-code sign-in (credential "
                "token_cache).",
                connection=connection.name,
            )
        raise_for_result(connection, result)
        raise AssertionError("unreachable")


class UserTokenProvider(_DelegatedProvider):
    """Delegated tokens per user (mode `user`): each user's MSAL cache in its own secret.

    The connection's client secret or certificate redeems codes and refresh tokens (a web app
    is a confidential client). A lost sign-in is `ReauthRequired` with that user's sign-in URL.
    """

    def app(self, connection: Connection, user: str, cache: KeyVaultTokenCache | None) -> Any:
        secret = self.registry.credential(connection)
        key = (connection.name, user.casefold(), fingerprint(secret))
        with self._lock:
            app = self._apps.get(key)
            if app is None:
                import msal

                kwargs: dict[str, Any] = {"token_cache": cache.cache} if cache else {}
                app = msal.ConfidentialClientApplication(
                    connection.client_id,
                    client_credential=client_credential(connection, secret),
                    authority=authority(connection),
                    instance_discovery=connection.instance_discovery,
                    **kwargs,
                )
                if cache is not None:
                    stale = [k for k in self._apps if k[:2] == key[:2]]
                    for k in stale:
                        del self._apps[k]
                    self._apps[key] = app
            return app

    def user_cache(self, connection: str, user: str) -> KeyVaultTokenCache:
        """The cache object of `user`'s sign-in on `connection` (tagged with both)."""
        return self.cache(
            secret_names.user_cache_secret(connection, user),
            secret_names.tags("user-cache", connection, user=user.casefold()),
        )

    def sign_in_url(self, connection: Connection, user: str) -> str:
        """Absolute when PUBLIC_BASE_URL is set; otherwise relative (the HTTP edge completes it
        from the request's own URL)."""
        path = signin.login_path(connection.name, user)
        base = self.settings.public_base_url
        return signin.absolute(base, path) if base else path

    def token(
        self, connection: Connection, user: str | None = None, *, force_refresh: bool = False
    ) -> str:
        if not user or "@" not in user:
            raise ValidationFailed(
                f"Connection {connection.name!r} signs in per user: say whose sign-in to use.",
                details=[Detail("user", "the UPN of the user whose sign-in sends (user mode)")],
            )
        cache = self.user_cache(connection.name, user)
        app = self.app(connection, user, cache)
        url = self.sign_in_url(connection, user)

        def reauth(reason: str) -> ReauthRequired:
            return ReauthRequired(
                f"{user} must sign in again for connection {connection.name!r} ({reason}).",
                sign_in_url=url,
                connection=connection.name,
                user=user,
            )

        return self._acquire(app, cache, connection, user, force_refresh, reauth)

    def store_sign_in(
        self,
        connection: Connection,
        user: str,
        serialized_cache: str,
        identity: tuple[str, str] | None = None,
    ) -> None:
        """Keep a new sign-in of `user` (an MSAL cache, bound to its (tid, oid)) in Key Vault
        and use it from now on."""
        cache = self.user_cache(connection.name, user)
        cache.replace(serialized_cache, account=user, identity=identity)
        with self._lock:
            # The next token() builds its app on the new cache content.
            for k in [k for k in self._apps if k[:2] == (connection.name, user.casefold())]:
                del self._apps[k]
