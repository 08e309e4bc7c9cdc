"""The two steps of a per-user sign-in, without azure.functions: start (login), finish (callback).

Raises `SignInError` (safe to show) for every refusal; app errors (unknown connection, Key Vault
down) are turned into SignInError here too, so the page never shows a stack or a secret. The
login route is anonymous: an unknown connection, one not in `user` mode, a misconfigured one and
a user outside its senders all get the same page (`NOT_AVAILABLE`), so nobody can probe which
connections exist or who may send; the reason goes to the log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.errors import AppError
from shared.identity import signin
from shared.identity.code_redemption import authorization_url, redeem
from shared.identity.connections import Connection

if TYPE_CHECKING:
    from shared.runtime import Runtime

log = logging.getLogger(__name__)

# One answer for every "this link cannot work" reason at login (see the module docstring).
NOT_AVAILABLE = (
    "This sign-in link is not valid. Check the link, or ask whoever sent it for a new one."
)


@dataclass(frozen=True)
class Started:
    """Where to send the browser, and the binding cookie value to set."""

    location: str
    binding: str


@dataclass(frozen=True)
class Finished:
    connection: str
    user: str
    return_url: str | None


def _not_available(reason: str, *args: object) -> signin.SignInError:
    log.warning("sign-in link refused: " + reason, *args)
    return signin.SignInError(NOT_AVAILABLE, 400, reason="not_available")


def _vault_unavailable() -> signin.SignInError:
    return signin.SignInError(
        "Key Vault is unavailable; try again in a minute.", 503, reason="vault_unavailable"
    )


def _app_error(connection: str, exc: AppError) -> signin.SignInError:
    """The sign-in page's answer to an app error; its own message (for the admin) is logged."""
    log.warning("sign-in for connection %s failed: %s (%s)", connection, exc.code, exc.message)
    return signin.SignInError(exc.message, exc.status, reason="app_error", code=exc.code)


def _user_connection(runtime: Runtime, name: str) -> Connection:
    """The `user`-mode connection `name`; the generic refusal for anything else (the reason is
    logged), SignInError 503 when Key Vault cannot be read."""
    from shared.errors import SecretsUnavailable

    try:
        connection = runtime.connections.get(name)
    except SecretsUnavailable as exc:
        raise _vault_unavailable() from exc
    except AppError as exc:
        raise _not_available("connection %r: %s", name[:80], exc.code) from None
    if connection.mode != "user":
        raise _not_available("connection %r is in %s mode", connection.name, connection.mode)
    return connection


def state_key(runtime: Runtime) -> str:
    """The Fernet key shared by all instances, created in Key Vault on first use.

    Two instances creating it at once both write; both then read back what Key Vault kept, so
    they agree from then on (a state sealed in that instant fails and is simply restarted).
    """
    from shared.errors import SecretsUnavailable

    try:
        key = runtime.secrets.get(signin.STATE_KEY_SECRET)
        if not key:
            from shared.identity.secret_names import tags

            runtime.secrets.set(signin.STATE_KEY_SECRET, signin.new_state_key(), tags=tags("app"))
            key = runtime.secrets.get(signin.STATE_KEY_SECRET, force_fetch=True)
    except SecretsUnavailable as exc:
        raise _vault_unavailable() from exc
    if not key:
        raise _vault_unavailable()
    return key


def start(
    runtime: Runtime, name: str, user: str | None, return_url: str | None, base: str
) -> Started:
    """Check the request, seal a state, and build the authorization URL."""
    # The address's shape first: saying it is missing reveals nothing about the connection.
    user = (user or "").strip()
    if "@" not in user or any(c in user for c in " \r\n<>\"'"):
        raise signin.SignInError(
            "Add ?user=<your e-mail address> to the sign-in link.", reason="user_missing"
        )
    connection = _user_connection(runtime, name)
    if not connection.sender_allowed(user):
        # A user outside the connection's senders could never use the sign-in anyway.
        raise _not_available("a user outside connection %r's senders", connection.name)
    checked_return = signin.check_return_url(return_url, connection.return_url_hosts)
    state = signin.new_state(connection.name, user, checked_return)
    sealed = signin.seal(state, state_key(runtime))
    redirect_uri = signin.absolute(base, signin.callback_path(connection.name))
    try:
        location = authorization_url(connection, state, sealed, redirect_uri)
    except AppError as exc:
        raise _app_error(connection.name, exc) from exc
    return Started(location, state.binding)


def finish(
    runtime: Runtime,
    name: str,
    params: dict[str, str],
    cookie_header: str | None,
    base: str,
) -> Finished:
    """Check the state and the browser binding, redeem the code, store the sign-in, notify."""
    state = signin.unseal(params.get("state", ""), state_key(runtime))
    if state.connection != name:
        raise signin.SignInError(
            "This sign-in belongs to another connection.", reason="other_connection"
        )
    if not signin.binding_matches(cookie_header, state.binding):
        raise signin.SignInError(
            "This sign-in was started in another browser. Open the sign-in link again here.",
            reason="other_browser",
        )
    if params.get("error"):
        # Entra's error code only: its description can name accounts.
        raise signin.SignInError(
            f"Microsoft did not sign you in ({params['error'][:80]}). Start the sign-in again.",
            reason="not_signed_in",
            error=params["error"][:80],
        )
    code = params.get("code")
    if not code:
        raise signin.SignInError(
            "The sign-in answer has no code. Start the sign-in again.", reason="no_code"
        )
    connection = _user_connection(runtime, name)
    redirect_uri = signin.absolute(base, signin.callback_path(connection.name))
    try:
        redeem(runtime.user_tokens, connection, state, code, redirect_uri)
    except AppError as exc:
        raise _app_error(connection.name, exc) from exc
    log.info("user sign-in stored for connection %s", connection.name)
    runtime.sign_in_hooks.notify(connection.name, state.user)
    return Finished(connection.name, state.user, state.return_url)
