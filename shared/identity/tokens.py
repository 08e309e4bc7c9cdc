"""Access tokens for Graph, one provider per connection mode: app, service_account, user.

Each provider keeps one long-lived MSAL application per connection (per user in `user` mode)
per process, so its in-memory token cache saves a token request per call. Delegated modes keep
their MSAL cache in Key Vault (shared.identity.token_cache): loaded once per process,
refreshed silently (MSAL treats a token with under 5 minutes left as expired, so tokens are
refreshed before use), written back only when a refresh rotated the refresh token. MSAL is
imported lazily.
Raises `AuthFailed` when Entra ID refuses the connection's own credentials, `ReauthRequired`
(with a sign-in URL or the admin command) when a person must sign in again, and
`GraphUnavailable` when Entra ID cannot be reached.
"""

from __future__ import annotations

import hashlib
import logging
import shlex
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol
from urllib.parse import urlsplit

from shared.errors import (
    AuthFailed,
    Detail,
    GraphUnavailable,
    NotImplementedYet,
    ReauthRequired,
    ValidationFailed,
)
from shared.identity import secret_names, signin
from shared.identity.connections import Connection, ConnectionRegistry
from shared.identity.secrets import SecretStore
from shared.identity.token_cache import KeyVaultTokenCache
from shared.settings import Settings

log = logging.getLogger(__name__)

# Entra answers that mean "a person must sign in again" (expired after inactivity, revoked,
# password changed, MFA or consent needed) rather than "the app is misconfigured".
REAUTH_ERRORS = frozenset({"invalid_grant", "interaction_required", "consent_required"})
REAUTH_CODES = frozenset({700082, 50173, 50076, 70043, 50078, 50079, 65001, 700084, 50158})
# How long a "must sign in again" answer is reused per sign-in (connection, or connection and
# user) before Entra is asked again; a new sign-in stored by this process, or seen in Key
# Vault, ends it at once.
REAUTH_MEMORY_SECONDS = 30.0
# Meanwhile every call still re-reads the sign-in from Key Vault (one read, no Entra request),
# so a sign-in stored by another instance or the admin CLI counts at once.


class TokenProvider(Protocol):
    """Gives a Graph access token for a connection (and, for `user` mode, a user)."""

    def token(
        self, connection: Connection, user: str | None = None, *, force_refresh: bool = False
    ) -> str: ...


def _raise_for_result(connection: Connection, result: dict[str, Any]) -> None:
    """MSAL reports errors as a dict: turn it into our error without echoing secrets."""
    error = str(result.get("error", "unknown_error"))
    codes = result.get("error_codes") or []
    code_text = ", ".join(f"AADSTS{c}" for c in codes) if codes else error
    if error in {"temporarily_unavailable", "server_error"}:
        raise GraphUnavailable(
            f"Entra ID is unavailable for connection {connection.name!r} ({code_text}).",
            retry_after=5.0,
        )
    raise AuthFailed(
        f"Entra ID refused connection {connection.name!r}: {error} ({code_text}). "
        "Check the connection's tenant, client id and credential."
    )


def needs_reauth(result: dict[str, Any]) -> bool:
    """True when an MSAL error result means the sign-in is gone (not a configuration error)."""
    codes = {int(c) for c in result.get("error_codes") or [] if str(c).isdigit()}
    return str(result.get("error")) in REAUTH_ERRORS or bool(codes & REAUTH_CODES)


def error_text(result: dict[str, Any]) -> str:
    """`invalid_grant (AADSTS700082)`: the error and its codes, never the description (it can
    echo user names) and never a token."""
    codes = result.get("error_codes") or []
    suffix = f" ({', '.join(f'AADSTS{c}' for c in codes)})" if codes else ""
    return f"{result.get('error', 'unknown_error')}{suffix}"


def client_credential(connection: Connection, secret: str) -> Any:
    """What MSAL's `client_credential` wants: the secret, or the certificate as a dict.

    A certificate secret is PEM text holding the private key and the certificate (what Key Vault
    stores for a PEM certificate); MSAL signs a client assertion with the key.
    """
    if connection.credential.type != "certificate":
        return secret
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    try:
        cert = x509.load_pem_x509_certificate(secret.encode())
        key = serialization.load_pem_private_key(secret.encode(), password=None)
    except ValueError as exc:
        raise AuthFailed(
            f"The certificate of connection {connection.name!r} must be PEM with the private "
            "key and the certificate (unencrypted)."
        ) from exc
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "private_key": key_pem,
        "thumbprint": cert.fingerprint(hashes.SHA1()).hex(),  # noqa: S303 - x5t is SHA-1
        "public_certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
    }


def _fingerprint(secret: str) -> str:
    # A stable digest (hash() is salted per process) so a rotated credential gets a fresh app.
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


@contextmanager
def _entra_errors(connection: Connection) -> Iterator[None]:
    """Wrap MSAL's configuration errors and requests' network errors at the edge."""
    try:
        yield
    except ValueError as exc:  # MSAL: bad authority and similar configuration errors
        raise AuthFailed(f"Connection {connection.name!r} is misconfigured: {exc}") from exc
    except Exception as exc:
        import requests

        if isinstance(exc, requests.RequestException):
            raise GraphUnavailable(
                f"Entra ID could not be reached for connection {connection.name!r}.",
                retry_after=5.0,
            ) from exc
        raise


def authority(connection: Connection) -> str:
    return f"{connection.authority_host.rstrip('/')}/{connection.tenant_id}"


def allow_sandbox_user_realm(connection: Connection) -> None:
    """Let MSAL's password grant skip user-realm discovery for a loopback (sandbox) authority.

    MSAL asks https://<authority host without its port>/common/userrealm first; for a sandbox
    on a non-443 port that is a refused connection. Only loopback hosts are added, so a real
    tenant always gets Microsoft's discovery (docs/connections.md).
    """
    host = urlsplit(connection.authority_host).hostname or ""
    if host in ("127.0.0.1", "localhost"):
        import msal

        msal.authority.Authority._domains_without_user_realm_discovery.add(host)


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
        key = (connection.name, connection.tenant_id, connection.client_id, _fingerprint(secret))
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
        with _entra_errors(connection), self._acquire_lock(connection):
            result = self._app(connection, fresh=force_refresh).acquire_token_for_client(
                scopes=[connection.graph_scope]
            )
        if "access_token" not in result:
            _raise_for_result(connection, result)
        return result["access_token"]


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
        with _entra_errors(connection):
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
            _raise_for_result(connection, result)
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
            with _entra_errors(connection):
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
        _raise_for_result(connection, result)
        raise AssertionError("unreachable")


class UserTokenProvider(_DelegatedProvider):
    """Delegated tokens per user (mode `user`): each user's MSAL cache in its own secret.

    The connection's client secret or certificate redeems codes and refresh tokens (a web app
    is a confidential client). A lost sign-in is `ReauthRequired` with that user's sign-in URL.
    """

    def app(self, connection: Connection, user: str, cache: KeyVaultTokenCache | None) -> Any:
        secret = self.registry.credential(connection)
        key = (connection.name, user.casefold(), _fingerprint(secret))
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

    def authorization_url(
        self, connection: Connection, state: signin.SignInState, sealed: str, redirect_uri: str
    ) -> str:
        """Where the browser goes to sign `state.user` in (auth code + PKCE S256 + nonce).

        Built here rather than with MSAL's deprecated get_authorization_request_url, which
        drops the PKCE parameters; MSAL still redeems the code and checks the nonce.
        """
        from urllib.parse import urlencode

        params = {
            "client_id": connection.client_id,
            "response_type": "code",
            "response_mode": "query",
            "redirect_uri": redirect_uri,
            # offline_access: a refresh token; openid/profile: the id token naming the account.
            "scope": " ".join([*connection.scopes(), "offline_access", "openid", "profile"]),
            "state": sealed,
            "nonce": state.nonce,
            "login_hint": state.user,
            "prompt": "select_account",
            "code_challenge": signin.challenge_for(state.verifier),
            "code_challenge_method": "S256",
        }
        return f"{authority(connection)}/oauth2/v2.0/authorize?{urlencode(params)}"

    def redeem(
        self, connection: Connection, state: signin.SignInState, code: str, redirect_uri: str
    ) -> str:
        """Redeem the code; store the cache only if the signed-in account is `state.user`.

        Returns the signed-in UPN. Raises signin.SignInError (wrong account, refused code).
        """
        import msal

        scratch = msal.SerializableTokenCache()
        secret = self.registry.credential(connection)
        app = msal.ConfidentialClientApplication(
            connection.client_id,
            client_credential=client_credential(connection, secret),
            authority=authority(connection),
            instance_discovery=connection.instance_discovery,
            token_cache=scratch,
        )
        with _entra_errors(connection):
            result = app.acquire_token_by_authorization_code(
                code,
                connection.scopes(),
                redirect_uri=redirect_uri,
                nonce=state.nonce,
                data={"code_verifier": state.verifier},
            )
        if "access_token" not in result:
            log.warning(
                "sign-in for connection %s refused: %s", connection.name, error_text(result)
            )
            raise signin.SignInError(
                f"Microsoft refused the sign-in ({error_text(result)}). Start it again.",
                502,
                reason="refused",
                error=error_text(result),
            )
        claims = result.get("id_token_claims") or {}
        signed_in = str(claims.get("preferred_username") or "")
        identity = signed_in_identity(connection, claims)
        if signed_in.casefold() != state.user.casefold():
            # Binding one person's mailbox to another's name would let them send as that name.
            raise signin.SignInError(
                f"You signed in as {signed_in or 'another account'}, but this link is for "
                f"{state.user}. Nothing was stored; sign in with {state.user}.",
                403,
                reason="wrong_account",
                signed_in=signed_in,
                user=state.user,
            )
        cache = self.user_cache(connection.name, state.user)
        cache.replace(scratch.serialize(), account=state.user, identity=identity)
        with self._lock:
            # The next token() builds its app on the new cache content.
            for k in [k for k in self._apps if k[:2] == (connection.name, state.user.casefold())]:
                del self._apps[k]
        return signed_in


_GUID_LENGTH = 36


def signed_in_identity(connection: Connection, claims: dict[str, Any]) -> tuple[str, str]:
    """(tid, oid) of an id token: who signed in, as Entra recommends binding it.

    Both are immutable; `preferred_username` is not (a renamed or re-used UPN must not carry a
    sign-in over to another person). A tenant id other than the connection's (when it names
    its tenant by GUID) is refused: the sign-in must come from the connection's own directory.
    Raises signin.SignInError (403).
    """
    tid, oid = str(claims.get("tid") or ""), str(claims.get("oid") or "")
    if not tid or not oid:
        raise signin.SignInError(
            "The sign-in answer does not say which account signed in (tid, oid). Nothing was "
            "stored.",
            403,
            reason="no_identity",
        )
    expected = connection.tenant_id.strip()
    if (
        len(expected) == _GUID_LENGTH
        and expected.count("-") == 4
        and tid.casefold() != expected.casefold()
    ):
        raise signin.SignInError(
            "You signed in with an account of another organisation. Nothing was stored; sign in "
            "with your account in this connection's organisation.",
            403,
            reason="other_tenant",
        )
    return tid, oid


class Tokens:
    """Routes a connection to the provider of its mode."""

    def __init__(self, providers: dict[str, TokenProvider]) -> None:
        self.providers = providers

    def source(self, connection: Connection, user: str | None = None) -> Callable[..., str]:
        """A callable returning a current token; `force_refresh=True` skips the token cache."""
        provider = self.providers.get(connection.mode)
        if provider is None:
            raise NotImplementedYet(
                f"Connection mode {connection.mode!r} is not available in this version."
            )

        def token(force_refresh: bool = False) -> str:
            return provider.token(connection, user, force_refresh=force_refresh)

        return token
