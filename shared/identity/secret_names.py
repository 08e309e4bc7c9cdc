"""Key Vault secret names: valid connection names and one prefix per kind of secret.

Every secret the app keeps has a kind (connection configuration, credential, signing key,
service-account token cache, per-user token cache, or app-wide) and each kind has its own
prefix, so no connection name can reach a secret of another kind. A connection's part of a name
is a readable slug plus 16 hex digits of SHA-256 over the exact name: `contoso.test` and
`contoso-test` never share a secret, and a long name is cut in its readable part only. Secrets
are also tagged with their kind and owning connection, so removal deletes by exact owner.
Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import re

# DNS-label-like: lower-case letters, digits, dots and hyphens; starts with a letter or digit.
CONNECTION_NAME_PATTERN = r"^[a-z0-9][a-z0-9.-]{0,62}$"
_CONNECTION_NAME = re.compile(CONNECTION_NAME_PATTERN)
# Names that read like one of the older layout's derived secrets are refused outright: an admin
# who types `contoso.test-client-secret` meant something else.
RESERVED_SUFFIXES = (
    "-client-secret",
    "-certificate",
    "-password",
    "-token-cache",
    "-signing-key",
    "-state-key",
)

# Prefixes of secret names, not secrets (S105 would read them as hard-coded passwords).
CONNECTION_PREFIX = "conn-"
CREDENTIAL_PREFIX = "cred-"
SIGNING_KEY_PREFIX = "sign-"
TOKEN_CACHE_PREFIX = "tokc-"  # noqa: S105
USER_CACHE_PREFIX = "user-"
APP_PREFIX = "app-"
KIND_PREFIXES = {
    "connection": CONNECTION_PREFIX,
    "credential": CREDENTIAL_PREFIX,
    "signing-key": SIGNING_KEY_PREFIX,
    "token-cache": TOKEN_CACHE_PREFIX,
    "user-cache": USER_CACHE_PREFIX,
    "app": APP_PREFIX,
}
# Tags on every secret the app or the admin command line writes.
TAG_KIND = "kind"
TAG_CONNECTION = "connection"

# The sealing key of per-user sign-in state, shared by all instances.
SIGNIN_STATE_KEY = f"{APP_PREFIX}signin-state-key"

_READABLE = 40
_HASH = 16


def _slug(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "-", text.lower())


def connection_name_problem(name: str) -> str | None:
    """Why `name` cannot be a connection name, or None when it can."""
    if not isinstance(name, str) or not _CONNECTION_NAME.fullmatch(name):
        return (
            "use 1-63 lower-case letters, digits, dots and hyphens, starting with a letter or digit"
        )
    if _slug(name).endswith(RESERVED_SUFFIXES):
        return f"must not end in {', '.join(RESERVED_SUFFIXES)} (names of other secrets)"
    return None


def valid_connection_name(name: str) -> bool:
    return connection_name_problem(name) is None


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:_HASH]


def connection_part(name: str) -> str:
    """`contoso.test` → `contoso-test-<16 hex>`: readable, and unique per exact name."""
    return f"{_slug(name)[:_READABLE].strip('-') or 'c'}-{_digest(name)}"


def connection_secret(name: str) -> str:
    """The connection's configuration (JSON)."""
    return CONNECTION_PREFIX + connection_part(name)


def credential_secret(name: str) -> str:
    """The connection's client secret, certificate (PEM) or ROPC password."""
    return CREDENTIAL_PREFIX + connection_part(name)


def signing_key_secret(name: str) -> str:
    """The connection's HMAC key for request and callback signatures."""
    return SIGNING_KEY_PREFIX + connection_part(name)


def token_cache_secret(name: str) -> str:
    """The service account's MSAL token cache."""
    return TOKEN_CACHE_PREFIX + connection_part(name)


def user_cache_prefix(name: str) -> str:
    """Every user cache of connection `name` starts with this (and is tagged with `name`)."""
    return f"{USER_CACHE_PREFIX}{connection_part(name)}-"


def user_cache_secret(name: str, user: str) -> str:
    """One user's MSAL token cache on connection `name` (user: case-insensitive UPN)."""
    local = _slug(user.partition("@")[0])[:24].strip("-") or "u"
    return f"{user_cache_prefix(name)}{local}-{_digest(name, user.casefold())}"


def credential_secret_for(name: str, credential_type: str) -> str:
    """Where a credential of `credential_type` lives: a token cache, or the credential kind."""
    if credential_type == "token_cache":
        return token_cache_secret(name)
    return credential_secret(name)


def tags(kind: str, connection: str | None = None, **extra: str) -> dict[str, str]:
    """The tags of a secret of `kind` owned by `connection` (Key Vault tag values ≤ 256)."""
    out = {TAG_KIND: kind}
    if connection is not None:
        out[TAG_CONNECTION] = connection
    out.update(extra)
    return out
