"""The token endpoint: one handler per grant type, and the token response they share."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sandbox.context import VAULT_RESOURCE
from sandbox.directory import App, Directory, Tenant, User
from sandbox.entra import client_auth
from sandbox.entra.authorize import AuthCodes
from sandbox.entra.device_code import GRANT_TYPE as DEVICE_CODE_GRANT
from sandbox.entra.device_code import DeviceCodes
from sandbox.entra.errors import (
    REVOKE_ERRORS,
    EntraError,
    entra_error_response,
    mfa_registration_required,
    mfa_required,
    password_expired,
)
from sandbox.entra.scopes import RESERVED_SCOPES, granted, parse_scopes
from sandbox.entra.tenancy import app_for, tenant_for
from sandbox.tokens import Tokens
from sandbox.web import Request, Response


class TokenEndpoint:
    """POST /{tenant}/oauth2/v2.0/token for every grant the sandbox supports."""

    def __init__(
        self, directory: Directory, tokens: Tokens, device_codes: DeviceCodes, auth: AuthCodes
    ) -> None:
        self.directory = directory
        self.tokens = tokens
        self.device_codes = device_codes
        self.auth_codes = auth
        self._grants = {
            "client_credentials": self._client_credentials,
            "password": self._password,
            "refresh_token": self._refresh,
            DEVICE_CODE_GRANT: self._device_code,
            "authorization_code": self._auth_code,
        }

    def token(self, request: Request) -> Response:
        try:
            return self._token(request)
        except EntraError as exc:
            return entra_error_response(exc, request)

    def _token(self, request: Request) -> Response:
        form = request.form()
        tenant = tenant_for(self.directory, request.params["tenant"])
        app, tenant = app_for(self.directory, client_auth.client_id_of(request, form), tenant)
        request.log["tenant"] = tenant.domain
        request.log["app"] = app.client_id
        how = client_auth.authenticate(request, form, app)
        grant = form.get("grant_type") or ""
        handler = self._grants.get(grant)
        if handler is None:
            raise EntraError(
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant}'.",
            )
        return handler(request, form, tenant, app, how)

    # --- the response of every delegated grant --------------------------------------------
    def delegated(
        self,
        request: Request,
        form: dict[str, str],
        tenant: Tenant,
        app: App,
        user: User,
        scope: str,
        how: str,
        nonce: str | None = None,
    ) -> Response:
        """Access token (+ refresh token with offline_access, id token with openid)."""
        scopes = parse_scopes(scope)
        scp = granted(app, scopes)
        access, expires_in = self.tokens.access_token(
            tenant_id=tenant.id,
            client_id=app.client_id,
            resource=scopes.resource,
            user=user,
            scopes=scp,
            client_auth=how,
        )
        names = [s for s in scopes.raw if s not in RESERVED_SCOPES] or [
            f"{scopes.resource}/{p}" for p in scp
        ]
        names += sorted(scopes.reserved)
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(names),
            "expires_in": expires_in,
            "ext_expires_in": expires_in,
            "access_token": access,
        }
        if "offline_access" in scopes.reserved:
            body["refresh_token"] = self.tokens.issue_refresh(
                tenant_id=tenant.id, client_id=app.client_id, user=user, scopes=scopes.raw
            )
        if "openid" in scopes.reserved:
            body["id_token"] = self.tokens.id_token(
                tenant_id=tenant.id, client_id=app.client_id, user=user, nonce=nonce
            )
        if form.get("client_info") == "1" or "openid" in scopes.reserved:
            body["client_info"] = self.tokens.client_info(tenant.id, user)
        request.log["user"] = user.upn
        return Response.json(body, headers={"Cache-Control": "no-store"})

    # --- the grants -----------------------------------------------------------------------
    def _client_credentials(
        self, request: Request, form: dict[str, str], tenant: Tenant, app: App, how: str
    ) -> Response:
        if how == client_auth.PUBLIC:
            raise EntraError(
                "invalid_client",
                7000218,
                "The request body must contain the following "
                "parameter: 'client_assertion' or 'client_secret'.",
                status=401,
            )
        scopes = parse_scopes(form.get("scope"))
        if not scopes.is_default or scopes.reserved:
            raise EntraError(
                "invalid_scope",
                1002012,
                f"The provided value for scope {form.get('scope')} is "
                "not valid. Client credential flows must have a scope value with /.default "
                "suffixed to the resource identifier (application ID URI).",
            )
        roles = [] if scopes.resource == VAULT_RESOURCE else sorted(app.application_permissions)
        access, expires_in = self.tokens.access_token(
            tenant_id=tenant.id,
            client_id=app.client_id,
            resource=scopes.resource,
            roles=roles,
            client_auth=how,
        )
        return Response.json(
            {
                "token_type": "Bearer",
                "expires_in": expires_in,
                "ext_expires_in": expires_in,
                "access_token": access,
            },
            headers={"Cache-Control": "no-store"},
        )

    def _password(
        self, request: Request, form: dict[str, str], tenant: Tenant, app: App, how: str
    ) -> Response:
        user = self.directory.user(tenant.id, form.get("username"))
        if user is None:
            raise EntraError(
                "invalid_grant",
                50034,
                f"The user account {{EUII Hidden}} does not exist in the "
                f"{tenant.id} directory. To sign into this application, the account must be "
                "added to the directory.",
            )
        request.log["user"] = user.upn
        if not self.directory.check_password(user, form.get("password", "")):
            raise EntraError(
                "invalid_grant",
                50126,
                "Error validating credentials due to invalid username or password.",
            )
        state = self.tokens.user_states.get(tenant.id, user.id)
        if state.password_expired:
            raise password_expired()
        resource = parse_scopes(form.get("scope")).resource
        if state.mfa == "registration_required":
            raise mfa_registration_required(resource)
        if user.mfa_required or state.mfa:
            raise mfa_required(resource)
        return self.delegated(request, form, tenant, app, user, form.get("scope", ""), how)

    def _refresh(
        self, request: Request, form: dict[str, str], tenant: Tenant, app: App, how: str
    ) -> Response:
        token = form.get("refresh_token", "")
        record = self.tokens.find_refresh(token) if token else None
        if record is None or record["tenant_id"] != tenant.id:
            raise EntraError(
                "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid."
            )
        if record["client_id"] != app.client_id:
            raise EntraError(
                "invalid_grant",
                70000,
                "Provided grant is invalid or malformed: the refresh "
                "token was issued to a different client.",
            )
        user = self.directory.user(tenant.id, record["user_id"])
        if user is None:
            raise EntraError("invalid_grant", 50034, "The user account does not exist.")
        request.log["user"] = user.upn
        issued = dt.datetime.fromtimestamp(record["issued_at"], dt.UTC).isoformat()
        revoked = self.tokens.revocation(tenant.id, user.id, record["issued_at"])
        if revoked:
            error = revoked.partition(":")[0]
            code, text = REVOKE_ERRORS.get(revoked, REVOKE_ERRORS["invalid_grant"])
            extra = {"suberror": "basic_action"} if error == "interaction_required" else {}
            raise EntraError(error, code, text.format(issued=issued), **extra)
        if self.tokens.idle_seconds(record) > self.tokens.refresh_inactivity:
            # Measured in the user's sandbox time (POST /_sandbox/clock/advance moves it).
            code, text = REVOKE_ERRORS["invalid_grant"]
            raise EntraError("invalid_grant", code, text.format(issued=issued))
        state = self.tokens.user_states.get(tenant.id, user.id)
        if state.password_expired:
            raise password_expired()
        if state.mfa and state.mfa_since is not None and record["issued_at"] < state.mfa_since:
            # The policy came after this sign-in: its tokens carry no MFA claim.
            resource = parse_scopes(form.get("scope") or record["scopes"]).resource
            if state.mfa == "registration_required":
                raise mfa_registration_required(resource)
            raise mfa_required(resource)
        self.tokens.touch_refresh(token, tenant.id, user.id)
        scope = form.get("scope") or record["scopes"]
        return self.delegated(request, form, tenant, app, user, scope, how)

    def _device_code(
        self, request: Request, form: dict[str, str], tenant: Tenant, app: App, how: str
    ) -> Response:
        entry = self.device_codes.redeem(form, tenant, app)
        assert entry.user is not None
        return self.delegated(request, form, tenant, app, entry.user, entry.scope, how)

    def _auth_code(
        self, request: Request, form: dict[str, str], tenant: Tenant, app: App, how: str
    ) -> Response:
        entry = self.auth_codes.redeem(form, tenant, app)
        scope = form.get("scope") or entry.scope
        return self.delegated(request, form, tenant, app, entry.user, scope, how, nonce=entry.nonce)
