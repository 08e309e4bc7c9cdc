"""Entra ID answers as MSAL reports them, turned into our errors (never echoing secrets).

`raise_for_result` maps an MSAL error dict to `GraphUnavailable` (Entra ID briefly unavailable)
or `AuthFailed` (the connection's own credentials or configuration); `needs_reauth` tells the
answers that mean a person must sign in again; `entra_errors` wraps MSAL's configuration errors
and network errors at the edge.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from shared.errors import AuthFailed, GraphUnavailable
from shared.identity.connections import Connection

# Entra answers that mean "a person must sign in again" (expired after inactivity, revoked,
# password changed, MFA or consent needed) rather than "the app is misconfigured".
REAUTH_ERRORS = frozenset({"invalid_grant", "interaction_required", "consent_required"})
REAUTH_CODES = frozenset({700082, 50173, 50076, 70043, 50078, 50079, 65001, 700084, 50158})


def raise_for_result(connection: Connection, result: dict[str, Any]) -> None:
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


@contextmanager
def entra_errors(connection: Connection) -> Iterator[None]:
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
