"""`connections authenticate`: the device-code sign-in of a service account, stored in Key Vault.

Shows Microsoft's URL and code, counts down while it waits, and stores the MSAL cache only when
the account that signed in is the connection's `account` (when one is configured).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from shared.errors import AppError
from shared.identity.connections import Connection
from shared.identity.entra_errors import authority, error_text
from shared.identity.token_cache import KeyVaultTokenCache


class AuthenticateError(AppError):
    """The sign-in did not complete; the message says what to do."""

    code, status = "authenticate_failed", 400


def device_code_sign_in(
    connection: Connection,
    cache: KeyVaultTokenCache,
    *,
    timeout: float | None = None,
    out: TextIO = sys.stderr,
    on_code: Callable[[dict[str, Any]], None] | None = None,
) -> str:
    """Run the device-code flow and store the cache; returns the signed-in UPN."""
    import msal

    scratch = msal.SerializableTokenCache()
    app = msal.PublicClientApplication(
        connection.client_id,
        authority=authority(connection),
        instance_discovery=connection.instance_discovery,
        token_cache=scratch,
    )
    flow = app.initiate_device_flow(scopes=connection.scopes())
    if "user_code" not in flow:
        raise AuthenticateError(
            f"Entra ID did not start a device-code sign-in ({error_text(flow)}). Check that the "
            "app registration allows public client flows."
        )
    # Printed as its own lines so people (and scripts) find the URL and the code.
    print(f"To sign in, open {flow['verification_uri']}", file=out, flush=True)
    print(f"and enter the code: {flow['user_code']}", file=out, flush=True)
    if on_code:
        on_code(flow)
    deadline = (
        flow["expires_at"] if timeout is None else min(flow["expires_at"], time.time() + timeout)
    )

    shown: list[int] = []

    def exit_condition(_flow: dict[str, Any]) -> bool:
        left = max(0, int(deadline - time.time()))
        text = f"Waiting for the sign-in... {left // 60:02d}:{left % 60:02d} left"
        if out.isatty():  # a live countdown on one line
            print(f"\r{text} ", end="", file=out, flush=True)
        elif not shown or shown[-1] - left >= 30:  # a log or a pipe: now, then every 30 s
            shown.append(left)
            print(text, file=out, flush=True)
        return left <= 0

    result = app.acquire_token_by_device_flow(flow, exit_condition=exit_condition)
    if out.isatty():
        print(file=out)
    if "access_token" not in result:
        if result.get("error") == "authorization_pending":
            raise AuthenticateError(
                "Nobody signed in before the code expired; run the command again."
            )
        raise AuthenticateError(
            f"The sign-in failed ({error_text(result)}); run the command again, and check the "
            "account's Send As / Full Access and the app's delegated permissions."
        )
    signed_in = str((result.get("id_token_claims") or {}).get("preferred_username") or "")
    if connection.account and signed_in.casefold() != connection.account.casefold():
        raise AuthenticateError(
            f"{signed_in or 'Another account'} signed in, but connection {connection.name!r} "
            f"uses {connection.account}; nothing was stored. Sign in as {connection.account}."
        )
    cache.replace(scratch.serialize(), account=signed_in or None)
    return signed_in
