"""Key Vault secrets with an in-memory TTL cache that serves the last good value during outages.

azure-identity and azure-keyvault-secrets are imported only when the first secret is needed:
together they cost more import time than the rest of the app (cold start).
Raises `SecretsUnavailable` when Key Vault cannot be reached and nothing is cached; a missing
secret is `None` (the caller decides what that means). Misses are remembered in a bounded
cache with a short TTL, so names nobody stored cannot grow memory. Writes recover a
soft-deleted secret of the same name first (Key Vault answers 409
ObjectIsDeletedButRecoverable otherwise).
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from shared.errors import SecretsUnavailable
from shared.settings import Settings

log = logging.getLogger(__name__)

# azure-core's defaults (300 s connect/read, 10 retries with back-off) let a hanging Key Vault
# hold a request for minutes; an answer within seconds or the last good value is better.
KEY_VAULT_CONNECTION_TIMEOUT = 5.0
KEY_VAULT_READ_TIMEOUT = 10.0
KEY_VAULT_RETRY_TOTAL = 2
# How long a write waits for Key Vault to finish recovering a soft-deleted secret.
RECOVER_WAIT_SECONDS = 30.0
# How long a reader without a cached value waits for another thread's fetch of the same name.
FETCH_WAIT_SECONDS = 60.0
# Names found missing: at most this many remembered, each for at most MISS_TTL_SECONDS.
MISS_CACHE_SIZE = 256
MISS_TTL_SECONDS = 60.0
# Fetches of the same name are serialised by one of a fixed set of locks (bounded memory).
FETCH_LOCK_STRIPES = 64


def make_credential(settings: Settings) -> Any:
    """The azure-identity credential the app uses for Key Vault (see KEY_VAULT_CREDENTIAL)."""
    if settings.key_vault_credential == "client_secret":
        from azure.identity import ClientSecretCredential

        kwargs: dict[str, Any] = {}
        if settings.azure_authority_host:
            kwargs["authority"] = settings.azure_authority_host
        return ClientSecretCredential(
            settings.azure_tenant_id,
            settings.azure_client_id,
            settings.azure_client_secret,
            disable_instance_discovery=not settings.authority_instance_discovery,
            **kwargs,
        )
    if settings.key_vault_credential == "managed_identity":
        from azure.identity import ManagedIdentityCredential

        return ManagedIdentityCredential(client_id=settings.azure_client_id or None)
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def make_secret_client(settings: Settings) -> Any:
    """An azure-keyvault-secrets SecretClient for KEY_VAULT_URL."""
    from azure.keyvault.secrets import SecretClient

    if not settings.key_vault_url:
        raise SecretsUnavailable("KEY_VAULT_URL is not set; the app cannot read its connections.")
    return SecretClient(
        settings.key_vault_url,
        make_credential(settings),
        verify_challenge_resource=settings.key_vault_verify_challenge_resource,
        connection_timeout=KEY_VAULT_CONNECTION_TIMEOUT,
        read_timeout=KEY_VAULT_READ_TIMEOUT,
        retry_total=KEY_VAULT_RETRY_TOTAL,
    )


def is_deleted_but_recoverable(exc: BaseException) -> bool:
    """True for Key Vault's 409 `ObjectIsDeletedButRecoverable` (a soft-deleted name)."""
    if getattr(exc, "status_code", None) != 409:
        return False
    error = getattr(exc, "error", None)
    codes = {getattr(error, "code", None)}
    inner = getattr(error, "innererror", None) or {}
    if isinstance(inner, dict):
        codes.add(inner.get("code"))
    return "ObjectIsDeletedButRecoverable" in codes or "deleted but recoverable" in str(exc)


def set_secret_recovering(client: Any, name: str, value: str, **kwargs: Any) -> Any:
    """`client.set_secret`, recovering a soft-deleted secret of that name first.

    With soft delete on (infra turns it on, with purge protection), a removed connection or
    sign-in keeps its name for the retention period and a PUT is refused with 409. Recovering
    brings back the old versions; the set below then makes our value the current one.
    """
    try:
        return client.set_secret(name, value, **kwargs)
    except Exception as exc:
        if not is_deleted_but_recoverable(exc):
            raise
    log.info("recovering soft-deleted secret %s before writing it", name)
    poller = client.begin_recover_deleted_secret(name)
    poller.wait(timeout=RECOVER_WAIT_SECONDS)
    return client.set_secret(name, value, **kwargs)


class SecretStore:
    """Reads secrets through a SecretClient, caching each for `ttl` seconds."""

    def __init__(
        self,
        client_factory: Callable[[], Any],
        ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._factory = client_factory
        self._client: Any = None
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._misses: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        self._fetch_locks = [threading.Lock() for _ in range(FETCH_LOCK_STRIPES)]

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._factory()
            return self._client

    def _fetch_lock(self, name: str) -> threading.Lock:
        return self._fetch_locks[zlib.crc32(name.encode("utf-8")) % FETCH_LOCK_STRIPES]

    def _cached(self, name: str) -> tuple[float, str | None] | None:
        """The cached (time, value) of `name`; a remembered miss reads as (time, None)."""
        hit = self._cache.get(name)
        if hit is not None:
            return hit
        with self._lock:
            missed = self._misses.get(name)
            if missed is None:
                return None
            now = self.clock()
            if now - missed > min(self.ttl, MISS_TTL_SECONDS):
                del self._misses[name]
                return None
            return (now, None)  # fresh until MISS_TTL_SECONDS after the miss

    def _remember(self, name: str, value: str | None) -> None:
        now = self.clock()
        if value is not None:
            self._cache[name] = (now, value)
            with self._lock:
                self._misses.pop(name, None)
            return
        self._cache.pop(name, None)
        with self._lock:
            self._misses[name] = now
            self._misses.move_to_end(name)
            while len(self._misses) > MISS_CACHE_SIZE:
                self._misses.popitem(last=False)

    def get(self, name: str, *, force_fetch: bool = False) -> str | None:
        """The secret's current value (None if it does not exist).

        Raises SecretsUnavailable when Key Vault fails (or another thread's fetch of the same
        name takes over FETCH_WAIT_SECONDS) and no value was ever read.
        """
        cached = self._cached(name)
        if cached and not force_fetch and self.clock() - cached[0] <= self.ttl:
            return cached[1]
        # One fetch per name at a time: a cold instance hit by parallel requests reads once
        # instead of once per thread. The locks are striped by name so a slow secret holds up
        # few others while their number stays fixed.
        lock = self._fetch_lock(name)
        if not lock.acquire(blocking=False):
            if cached and not force_fetch:
                # Someone is refreshing this name already: the stale value serves meanwhile.
                return cached[1]
            if not lock.acquire(timeout=FETCH_WAIT_SECONDS):
                if cached:
                    return cached[1]
                raise SecretsUnavailable(
                    "Key Vault did not answer in time; retry later.", retry_after=5.0
                )
        try:
            cached = self._cached(name)
            if cached and not force_fetch and self.clock() - cached[0] <= self.ttl:
                return cached[1]
            return self._fetch(name, cached)
        finally:
            lock.release()

    def _fetch(self, name: str, cached: tuple[float, str | None] | None) -> str | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            value: str | None = self._get_client().get_secret(name).value
        except ResourceNotFoundError:
            value = None
        except Exception as exc:
            # Key Vault briefly unavailable (network, 5xx, throttling, token): the last good
            # value beats failing every request; it was valid a TTL ago.
            if cached:
                log.warning(
                    "Key Vault read failed (%s); serving cached %s", type(exc).__name__, name
                )
                return cached[1]
            raise SecretsUnavailable(
                f"Key Vault could not be read ({type(exc).__name__}); retry later.",
                retry_after=5.0,
            ) from exc
        self._remember(name, value)
        return value

    def list_properties(self) -> list[tuple[str, dict[str, str]]]:
        """(name, tags) of every enabled secret in the vault: one paged listing, no values.

        Raises SecretsUnavailable when Key Vault cannot be listed.
        """
        try:
            return [
                (props.name, dict(props.tags or {}))
                for props in self._get_client().list_properties_of_secrets()
                if props.enabled is not False
            ]
        except Exception as exc:
            raise SecretsUnavailable(
                f"Key Vault's secrets could not be listed ({type(exc).__name__}); retry later.",
                retry_after=5.0,
            ) from exc

    def set(
        self,
        name: str,
        value: str,
        *,
        content_type: str = "text/plain",
        tags: dict[str, str] | None = None,
    ) -> None:
        """Write a secret and remember it as this process's current value.

        Raises `SecretsUnavailable` when Key Vault refuses or cannot be reached (the value is
        never part of the message).
        """
        try:
            extra = {"tags": tags} if tags else {}
            set_secret_recovering(
                self._get_client(), name, value, content_type=content_type, **extra
            )
        except Exception as exc:
            raise SecretsUnavailable(
                f"Key Vault could not store {name} ({type(exc).__name__}); retry later.",
                retry_after=5.0,
            ) from exc
        self._remember(name, value)
