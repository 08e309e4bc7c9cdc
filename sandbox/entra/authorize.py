"""The authorization code flow: the sign-in and consent page, issued codes and redeeming them
(PKCE S256 or plain, redirect URI check, single use)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlparse

from sandbox import signin
from sandbox.directory import App, Directory, Tenant, User
from sandbox.entra.errors import EntraError
from sandbox.entra.scopes import ScopeRequest, granted, parse_scopes
from sandbox.entra.tenancy import app_for, tenant_for
from sandbox.tokens import b64url
from sandbox.web import Request, Response

CODE_LIFETIME_SECONDS = 600


def loopback_redirect(uri: str | None) -> bool:
    """Redirect URIs the sandbox accepts: http on 127.0.0.1 or localhost, any port."""
    if not uri:
        return False
    parsed = urlparse(uri)
    return parsed.scheme == "http" and parsed.hostname in ("127.0.0.1", "localhost")


@dataclass
class AuthCode:
    client_id: str
    tenant_id: str
    redirect_uri: str
    scope: str
    challenge: str | None
    method: str
    nonce: str | None
    user: User
    expires_at: float
    used: bool = False


class AuthCodes:
    """The authorize endpoint and the codes it issued (in memory). `refusal(user)` says why an
    interactive sign-in of `user` must fail (an expired password), or None."""

    def __init__(
        self, directory: Directory, refusal: Callable[[User], str | None] = lambda _u: None
    ) -> None:
        self.directory = directory
        self.refusal = refusal
        self._lock = threading.Lock()
        self._codes: dict[str, AuthCode] = {}

    def reset(self) -> None:
        with self._lock:
            self._codes.clear()

    def authorize(self, request: Request) -> Response:
        """GET shows the sign-in page; POST (the form) signs in and redirects with a code."""
        if request.method == "POST":
            form = request.form()
            params = dict(parse_qsl(form.get("q", ""), keep_blank_values=True))
        else:
            form = {}
            params = {k: v[0] for k, v in request.query.items()}
        try:
            tenant = tenant_for(self.directory, request.params["tenant"])
            app, tenant = app_for(self.directory, params.get("client_id"), tenant)
            request.log["tenant"] = tenant.domain
            request.log["app"] = app.client_id
        except EntraError as exc:
            return Response.html(signin.error_page(f"AADSTS{exc.code}: {exc.description}"), 400)
        redirect_uri = params.get("redirect_uri")
        if not loopback_redirect(redirect_uri) and redirect_uri not in app.redirect_uris:
            return Response.html(
                signin.error_page(
                    "AADSTS50011: The redirect URI specified in the request does not match the "
                    "redirect URIs configured for the application (sandbox: http on 127.0.0.1 "
                    "or localhost)."
                ),
                400,
            )
        assert redirect_uri is not None
        if params.get("response_type") != "code":
            return _redirect(params, {"error": "unsupported_response_type"})
        try:
            requested = _consent_list(app, parse_scopes(params.get("scope")))
        except EntraError as exc:
            return _redirect(
                params,
                {"error": exc.error, "error_description": f"AADSTS{exc.code}: {exc.description}"},
            )
        query = urlencode(params)
        if request.method == "GET":
            return Response.html(
                signin.signin_page(app, tenant, query, requested, params.get("login_hint", ""))
            )
        if form.get("action") != "accept":
            return _redirect(
                params,
                {
                    "error": "access_denied",
                    "error_description": "AADSTS65004: User declined to consent to access the app.",
                },
            )
        user = self.directory.user(tenant.id, form.get("username"))
        if user is None or not self.directory.check_password(user, form.get("password", "")):
            page = signin.signin_page(
                app,
                tenant,
                query,
                requested,
                form.get("username", ""),
                error="Your account or password is incorrect.",
            )
            return Response.html(page, 200)
        refused = self.refusal(user)
        if refused:
            return Response.html(signin.error_page(refused), 400)
        request.log["user"] = user.upn
        code = "sbx-code." + secrets.token_urlsafe(32)
        with self._lock:
            self._codes[code] = AuthCode(
                client_id=app.client_id,
                tenant_id=tenant.id,
                redirect_uri=redirect_uri,
                scope=params.get("scope", ""),
                challenge=params.get("code_challenge"),
                method=params.get("code_challenge_method", "plain"),
                nonce=params.get("nonce"),
                user=user,
                expires_at=time.time() + CODE_LIFETIME_SECONDS,
            )
        return _redirect(params, {"code": code, "session_state": str(uuid.uuid4())})

    def redeem(self, form: dict[str, str], tenant: Tenant, app: App) -> AuthCode:
        """The code's grant (marked used); raises EntraError (54005 reused, 70008 unknown or
        expired, 70000 other client, 500112 redirect mismatch, 501481 PKCE mismatch)."""
        code = form.get("code", "")
        with self._lock:
            entry = self._codes.get(code)
            if entry is not None and entry.used:
                raise EntraError(
                    "invalid_grant",
                    54005,
                    "OAuth2 Authorization code was already redeemed, "
                    "please retry with a new valid code or use an existing refresh token.",
                )
            if entry is None or entry.expires_at < time.time():
                raise EntraError(
                    "invalid_grant",
                    70008,
                    "The provided authorization code or refresh token "
                    "has expired due to inactivity. Send a new interactive authorization request.",
                )
            entry.used = True
        if entry.client_id != app.client_id or entry.tenant_id != tenant.id:
            raise EntraError("invalid_grant", 70000, "The code was issued to another client.")
        if form.get("redirect_uri") != entry.redirect_uri:
            raise EntraError(
                "invalid_grant",
                500112,
                "The reply address does not match the reply address "
                "provided when requesting the authorization code.",
            )
        if entry.challenge:
            verifier = form.get("code_verifier", "")
            if entry.method == "S256":
                computed = b64url(hashlib.sha256(verifier.encode()).digest())
            else:
                computed = verifier
            if not verifier or not hmac.compare_digest(computed, entry.challenge):
                raise EntraError(
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the "
                    "code_challenge supplied in the authorization request.",
                )
        return entry


def _consent_list(app: App, scopes: ScopeRequest) -> list[str]:
    """What the consent page lists: the granted permissions and the OIDC scopes."""
    return granted(app, scopes) + sorted(scopes.reserved)


def _redirect(params: dict[str, str], values: dict[str, str]) -> Response:
    if params.get("state") is not None:
        values = {**values, "state": params["state"]}
    uri = params["redirect_uri"]
    mode = params.get("response_mode", "query")
    if mode == "form_post":
        return Response.html(signin.form_post_page(uri, values))
    if mode == "fragment":
        return Response.redirect(f"{uri}#{urlencode(values)}")
    joiner = "&" if urlparse(uri).query else "?"
    return Response.redirect(f"{uri}{joiner}{urlencode(values)}")
