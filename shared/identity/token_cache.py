"""MSAL token caches kept in Key Vault: secret names, the stored envelope, load and write-back.

A delegated sign-in (service account or user) is an MSAL `SerializableTokenCache`. Each process
loads it from Key Vault once, lets MSAL refresh silently in memory, and writes it back only when
MSAL says it changed (a refresh rotated the refresh token). Access tokens are pruned before
storing: they are short-lived, and without them a cache of one account stays far below Key
Vault's 25 KB value limit. Why concurrent write-backs lose nothing: docs/connections.md.
Raises `TokenCacheTooLarge` (a bug or a misuse: never a normal condition) and whatever
`SecretStore` raises (`SecretsUnavailable`), except on write-back: a token in hand beats a
failed write, which is retried on the next call.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from shared.errors import AppError, SecretsUnavailable
from shared.identity.secrets import SecretStore

# Key Vault's limit on a secret value (25 KB); the sandbox enforces the same.
MAX_SECRET_BYTES = 25 * 1024
ENVELOPE_VERSION = 1
# Entra ID ends a refresh token after 90 days without use (the "inactivity" limit).
REFRESH_TOKEN_INACTIVITY_DAYS = 90

log = logging.getLogger(__name__)


class TokenCacheTooLarge(AppError):
    """A token cache would not fit in one Key Vault secret."""

    code, status = "token_cache_too_large", 500


def prune_access_tokens(serialized: str) -> str:
    """The MSAL cache JSON without access tokens (refresh tokens, accounts, id tokens kept)."""
    data = json.loads(serialized) if serialized else {}
    data.pop("AccessToken", None)
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def encode_envelope(
    serialized: str,
    *,
    account: str | None,
    now: float | None = None,
    identity: tuple[str, str] | None = None,
) -> str:
    """The stored value: who is signed in, when the cache was written, and MSAL's cache.

    `identity` (user sign-ins) is the account's (tid, oid): what the sign-in is bound to;
    `account` (the UPN) is kept for display.

    `savedAt` is also when the refresh token was last used: a silent refresh rotates it, which
    is what makes the cache change and get written. Raises TokenCacheTooLarge over 25 KB.
    """
    value = json.dumps(
        {
            "v": ENVELOPE_VERSION,
            "account": account,
            **({"tid": identity[0], "oid": identity[1]} if identity else {}),
            "savedAt": int(now if now is not None else time.time()),
            "msal": prune_access_tokens(serialized),
        },
        separators=(",", ":"),
    )
    if len(value.encode()) > MAX_SECRET_BYTES:
        raise TokenCacheTooLarge(
            f"The token cache is {len(value.encode())} bytes; Key Vault stores at most "
            f"{MAX_SECRET_BYTES}. Remove the connection's extra accounts and sign in again."
        )
    return value


@dataclass(frozen=True)
class CacheState:
    """What a stored cache says about its sign-in (for `admin connections list/show`)."""

    account: str | None
    saved_at: int | None
    has_refresh_token: bool
    # The (tid, oid) a user sign-in is bound to; None for service accounts and old caches.
    identity: tuple[str, str] | None = None

    def days_left(self, now: float | None = None) -> float | None:
        """Days until Entra's 90-day inactivity limit ends the refresh token (None: unknown)."""
        if self.saved_at is None or not self.has_refresh_token:
            return None
        idle = (now if now is not None else time.time()) - self.saved_at
        return round(REFRESH_TOKEN_INACTIVITY_DAYS - idle / 86400, 1)


def decode_envelope(value: str | None) -> tuple[str, CacheState]:
    """(MSAL cache JSON, its state) of a stored value; tolerates a bare MSAL cache and None."""
    if not value:
        return "", CacheState(None, None, False)
    identity: tuple[str, str] | None = None
    data = json.loads(value)
    if isinstance(data, dict) and data.get("v") == ENVELOPE_VERSION and "msal" in data:
        serialized = data["msal"] or ""
        account, saved_at = data.get("account"), data.get("savedAt")
        if data.get("tid") and data.get("oid"):
            identity = (str(data["tid"]), str(data["oid"]))
    else:
        serialized, account, saved_at = value, None, None
    msal_data = json.loads(serialized) if serialized else {}
    if account is None:
        accounts = list((msal_data.get("Account") or {}).values())
        account = accounts[0].get("username") if accounts else None
    has_rt = bool(msal_data.get("RefreshToken"))
    return serialized, CacheState(account, saved_at, has_rt, identity)


class KeyVaultTokenCache:
    """One MSAL SerializableTokenCache mirrored to one Key Vault secret (one per process)."""

    def __init__(
        self, secrets: SecretStore, secret_name: str, tags: dict[str, str] | None = None
    ) -> None:
        import msal

        self.secrets = secrets
        self.secret_name = secret_name
        # Written with every store: the cache's kind and owning connection (exact removal).
        self.tags = dict(tags or {})
        self.cache = msal.SerializableTokenCache()
        self.lock = threading.RLock()
        self.loaded = False
        self._stored: str | None = None
        self._decoded: tuple[str | None, CacheState] | None = None
        # (monotonic deadline, reason) of the last "a person must sign in" answer: calls for a
        # revoked sign-in stop costing a token request each.
        self._refused: tuple[float, str] | None = None

    def recent_refusal(self) -> str | None:
        """The reason of a refusal remembered by `remember_refusal` and not yet expired."""
        with self.lock:
            if self._refused and time.monotonic() < self._refused[0]:
                return self._refused[1]
            self._refused = None
            return None

    def remember_refusal(self, reason: str, seconds: float) -> None:
        with self.lock:
            self._refused = (time.monotonic() + seconds, reason)

    def load(self, *, force: bool = False) -> bool:
        """Read the secret (once, or again with `force`); True when it differs from before.

        A fresh read bypasses the SecretStore's TTL cache: after a failed refresh the question
        is whether someone signed in again since this process last looked.
        """
        with self.lock:
            if self.loaded and not force:
                return False
            raw = self.secrets.get(self.secret_name, force_fetch=force)
            changed = raw != self._stored
            if changed:
                self._refused = None  # a different sign-in is stored: worth trying
            if changed or not self.loaded:
                serialized, _ = decode_envelope(raw)
                self.cache.deserialize(serialized or None)
                self._stored = raw
            self.loaded = True
            return changed

    def state(self) -> CacheState:
        with self.lock:
            # Asked on every token call: decode the stored value once per value.
            if self._decoded is None or self._decoded[0] is not self._stored:
                self._decoded = (self._stored, decode_envelope(self._stored)[1])
            return self._decoded[1]

    def identity(self) -> tuple[str, str] | None:
        """The (tid, oid) the stored sign-in is bound to (None: select by account name)."""
        return self.state().identity

    def replace(
        self, serialized: str, *, account: str | None, identity: tuple[str, str] | None = None
    ) -> None:
        """Store a whole new sign-in (device code, auth code) and use it from now on."""
        with self.lock:
            value = encode_envelope(serialized, account=account, identity=identity)
            self.secrets.set(
                self.secret_name, value, content_type="application/json", tags=self.tags
            )
            self.cache.deserialize(serialized)
            self._stored = value
            self.loaded = True
            self._refused = None

    def save_if_changed(self, *, account: str | None) -> bool:
        """Write the cache back when MSAL changed it (a rotated refresh token); True if written.

        An access-token-only change is not worth a Key Vault write: the stored copy has none.
        """
        with self.lock:
            if not self.cache.has_state_changed:
                return False
            # MSAL's serialize() clears has_state_changed; it is set again if the write fails.
            value = encode_envelope(
                self.cache.serialize(), account=account, identity=self.state().identity
            )
            stored_msal = decode_envelope(self._stored)[0] if self._stored else ""
            if stored_msal and json.loads(stored_msal) == json.loads(json.loads(value)["msal"]):
                self.cache.has_state_changed = False
                return False
            try:
                self.secrets.set(
                    self.secret_name, value, content_type="application/json", tags=self.tags
                )
            except SecretsUnavailable as exc:
                # The caller holds a valid token: failing its request over a write-back would
                # waste it. The flag stays set, so the next call writes the change again; the
                # old refresh token stored meanwhile still works (docs/connections.md).
                log.warning(
                    "token cache %s not written back, will retry: %s",
                    self.secret_name,
                    exc.message,
                )
                self.cache.has_state_changed = True
                return False
            self.cache.has_state_changed = False
            self._stored = value
            return True


def read_state(secrets: SecretStore, secret_name: str) -> CacheState:
    """The state of a stored cache without building MSAL objects (admin CLI)."""
    value: Any = secrets.get(secret_name, force_fetch=True)
    return decode_envelope(value)[1]
