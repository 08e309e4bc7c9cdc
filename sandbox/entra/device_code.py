"""The device code flow: start a code, the /devicelogin page, approval, and redeeming it."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sandbox import signin
from sandbox.directory import App, Directory, Tenant, User
from sandbox.entra.errors import EntraError, entra_error_response
from sandbox.entra.scopes import parse_scopes
from sandbox.entra.tenancy import app_for, tenant_for
from sandbox.web import Request, Response

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
POLL_INTERVAL_SECONDS = 5
_USER_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


@dataclass
class DeviceCode:
    device_code: str
    user_code: str
    client_id: str
    tenant_id: str
    scope: str
    expires_at: float
    status: str = "pending"  # pending, approved, denied
    user: User | None = None


class DeviceCodes:
    """Pending device codes (in memory); `lifetime` reads the current setting on each start."""

    def __init__(
        self,
        directory: Directory,
        lifetime,
        refusal: Callable[[User], str | None] = lambda _u: None,
    ) -> None:
        self.directory = directory
        # Why an interactive sign-in of a user must fail (an expired password), or None.
        self.refusal = refusal
        self._lifetime = lifetime
        self._lock = threading.Lock()
        self._codes: dict[str, DeviceCode] = {}

    def reset(self) -> None:
        with self._lock:
            self._codes.clear()

    def start(self, request: Request) -> Response:
        """POST /{tenant}/oauth2/v2.0/devicecode: a new user code and device code."""
        try:
            form = request.form()
            tenant = tenant_for(self.directory, request.params["tenant"])
            app, tenant = app_for(self.directory, form.get("client_id"), tenant)
            request.log["tenant"] = tenant.domain
            request.log["app"] = app.client_id
            parse_scopes(form.get("scope"))
        except EntraError as exc:
            return entra_error_response(exc, request)
        user_code = "".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(9))
        lifetime = self._lifetime()
        entry = DeviceCode(
            device_code=secrets.token_urlsafe(32),
            user_code=user_code,
            client_id=app.client_id,
            tenant_id=tenant.id,
            scope=form.get("scope", ""),
            expires_at=time.time() + lifetime,
        )
        with self._lock:
            self._codes[entry.device_code] = entry
        uri = f"{request.base_url}/devicelogin"
        return Response.json(
            {
                "user_code": user_code,
                "device_code": entry.device_code,
                "verification_uri": uri,
                "expires_in": lifetime,
                "interval": POLL_INTERVAL_SECONDS,
                "message": f"To sign in, use a web browser to open the page {uri} and enter the "
                f"code {user_code} to authenticate.",
            }
        )

    def approve(self, user_code: str, upn: str, *, deny: bool = False) -> str | None:
        """Approve (or deny) a pending device code as `upn`; returns a problem, or None."""
        wanted = user_code.replace("-", "").strip().upper()
        with self._lock:
            entry = next((d for d in self._codes.values() if d.user_code == wanted), None)
            if entry is None:
                return f"unknown user code {user_code}"
            if entry.expires_at < time.time():
                return "the device code has expired"
            user = self.directory.user(entry.tenant_id, upn)
            if user is None:
                return f"{upn} is not a user of the device code's tenant"
            refused = None if deny else self.refusal(user)
            if refused:
                return refused
            entry.user = user
            entry.status = "denied" if deny else "approved"
        return None

    def redeem(self, form: dict[str, str], tenant: Tenant, app: App) -> DeviceCode:
        """The approved entry for the form's device_code (consumed); raises EntraError
        (70000 unknown, 70020 expired, 70016 still pending, authorization_declined)."""
        code = form.get("device_code", "")
        with self._lock:
            entry = self._codes.get(code)
            if entry is None or entry.client_id != app.client_id or entry.tenant_id != tenant.id:
                raise EntraError(
                    "invalid_grant",
                    70000,
                    "The provided value for the input parameter 'device_code' is not valid.",
                )
            if entry.expires_at < time.time():
                self._codes.pop(code, None)
                raise EntraError(
                    "expired_token",
                    70020,
                    "The provided authorization code or "
                    "refresh token has expired due to it has passed its lifetime.",
                )
            if entry.status == "pending":
                raise EntraError(
                    "authorization_pending",
                    70016,
                    "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
                )
            self._codes.pop(code, None)
        if entry.status == "denied":
            raise EntraError("authorization_declined", 70000, "The user declined the sign-in.")
        assert entry.user is not None
        return entry

    def login_page(self, request: Request) -> Response:
        """GET/POST /devicelogin: the page a person uses to enter a code and sign in."""
        if request.method == "GET":
            return Response.html(signin.device_page())
        form = request.form()
        code = form.get("user_code", "").replace("-", "").strip().upper()
        with self._lock:
            entry = next((d for d in self._codes.values() if d.user_code == code), None)
        if entry is None:
            return Response.html(signin.device_page(error="That code is not valid."), 400)
        user = self.directory.user(entry.tenant_id, form.get("username"))
        if user is None or not self.directory.check_password(user, form.get("password", "")):
            return Response.html(
                signin.device_page(error="Wrong user name or password.", code=code), 400
            )
        problem = self.approve(code, user.upn)
        if problem:
            return Response.html(signin.device_page(error=problem, code=code), 400)
        return Response.html(signin.done_page("You have signed in. You may close this window."))
