"""Entra ID's error shape: one exception type and the single place that renders it."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sandbox.web import Request, Response

# What `POST /_sandbox/users/{upn}/revoke` makes a refresh token fail with (Entra's codes).
REVOKE_ERRORS = {
    "invalid_grant": (
        700082,
        "The refresh token has expired due to inactivity. The token was issued on {issued} and "
        "was inactive for a while (sandbox revoke).",
    ),
    "invalid_grant:50173": (
        50173,
        "The provided grant has expired due to it being revoked, a fresh auth token is needed. "
        "The user might have changed or reset their password.",
    ),
    "interaction_required": (
        50076,
        "Due to a configuration change made by your administrator, or because you moved to a new "
        "location, you must use multi-factor authentication to access the resource.",
    ),
}


class EntraError(Exception):
    """An OAuth error the token endpoint answers with, in Entra's shape."""

    def __init__(self, error: str, code: int, description: str, status: int = 400, **extra: Any):
        super().__init__(f"{error}: AADSTS{code}")
        self.error, self.code, self.description = error, code, description
        self.status = status
        self.extra = extra


def entra_error_response(exc: EntraError, request: Request) -> Response:
    """`exc` as Entra answers it: AADSTS code, trace and correlation ids, no-store."""
    correlation = request.headers.get("client-request-id") or str(uuid.uuid4())
    trace = str(uuid.uuid4())
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    body = {
        "error": exc.error,
        "error_description": (
            f"AADSTS{exc.code}: {exc.description} Trace ID: {trace} "
            f"Correlation ID: {correlation} Timestamp: {stamp}"
        ),
        "error_codes": [exc.code],
        "timestamp": stamp,
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": f"{request.base_url}/error?code={exc.code}",
        **exc.extra,
    }
    return Response.json(body, exc.status, {"Cache-Control": "no-store"})


def mfa_required(resource: str) -> EntraError:
    """AADSTS50076: the user must complete MFA (the password grant cannot)."""
    return EntraError(
        "interaction_required",
        50076,
        "Due to a configuration change made by your administrator, or because you moved to a "
        f"new location, you must use multi-factor authentication to access '{resource}'.",
        suberror="basic_action",
    )


def password_expired() -> EntraError:
    """AADSTS50055: the user's password expired (sandbox.user_states)."""
    return EntraError(
        "invalid_grant",
        50055,
        "The password is expired. The user's password is expired, and therefore their login or "
        "session was ended. They will be offered the opportunity to reset it, or may ask an "
        "admin to reset it via Reset the user's password.",
    )


def mfa_registration_required(resource: str) -> EntraError:
    """AADSTS50079: a policy demands MFA, and the user has not registered a method yet."""
    return EntraError(
        "interaction_required",
        50079,
        "Due to a configuration change made by your administrator, or because you moved to a "
        f"new location, you must enroll in multi-factor authentication to access '{resource}'.",
        suberror="basic_action",
    )
