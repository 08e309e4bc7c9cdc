"""A user's sign-in (mode `user`): the authorization URL (auth code + PKCE S256 + nonce) and
redeeming the code that comes back, stored only for the account the link was made for."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from shared.identity import signin
from shared.identity.certificates import client_credential
from shared.identity.connections import Connection
from shared.identity.delegated_tokens import UserTokenProvider
from shared.identity.entra_errors import authority, entra_errors, error_text

log = logging.getLogger(__name__)


def authorization_url(
    connection: Connection, state: signin.SignInState, sealed: str, redirect_uri: str
) -> str:
    """Where the browser goes to sign `state.user` in.

    Built here rather than with MSAL's deprecated get_authorization_request_url, which drops
    the PKCE parameters; MSAL still redeems the code and checks the nonce.
    """
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
    tokens: UserTokenProvider,
    connection: Connection,
    state: signin.SignInState,
    code: str,
    redirect_uri: str,
) -> str:
    """Redeem the code; store the sign-in only if the signed-in account is `state.user`.

    Returns the signed-in UPN. Raises signin.SignInError (wrong account, refused code).
    """
    import msal

    scratch = msal.SerializableTokenCache()
    secret = tokens.registry.credential(connection)
    app = msal.ConfidentialClientApplication(
        connection.client_id,
        client_credential=client_credential(connection, secret),
        authority=authority(connection),
        instance_discovery=connection.instance_discovery,
        token_cache=scratch,
    )
    with entra_errors(connection):
        result = app.acquire_token_by_authorization_code(
            code,
            connection.scopes(),
            redirect_uri=redirect_uri,
            nonce=state.nonce,
            data={"code_verifier": state.verifier},
        )
    if "access_token" not in result:
        log.warning("sign-in for connection %s refused: %s", connection.name, error_text(result))
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
    tokens.store_sign_in(connection, state.user, scratch.serialize(), identity)
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
