"""Entra ID stand-in: discovery, JWKS, the token endpoint's grants, device code and authorize."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlparse

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from sandbox import signin
from sandbox.context import GRAPH_RESOURCE, VAULT_RESOURCE, SandboxContext
from sandbox.directory import App, Tenant, User
from sandbox.tokens import GRAPH_APP_ID, VAULT_APP_ID, b64url
from sandbox.web import Request, Response

RESERVED_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
RESOURCE_ALIASES = {
    GRAPH_RESOURCE: GRAPH_RESOURCE,
    GRAPH_APP_ID: GRAPH_RESOURCE,
    "https://graph.microsoft.com/": GRAPH_RESOURCE,
    VAULT_RESOURCE: VAULT_RESOURCE,
    VAULT_APP_ID: VAULT_RESOURCE,
    "https://vault.azure.net/": VAULT_RESOURCE,
}
MULTI_TENANT_SEGMENTS = frozenset({"common", "organizations"})
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
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


@dataclass
class ScopeRequest:
    """A parsed `scope` parameter: one resource, its permissions, and the OIDC scopes."""

    raw: list[str]
    resource: str
    permissions: list[str]  # short names ("Mail.Send") or [".default"]
    reserved: set[str] = field(default_factory=set)

    @property
    def is_default(self) -> bool:
        return self.permissions == [".default"]


def parse_scopes(scope: str | None) -> ScopeRequest:
    """Split a scope string the way Entra does; raises EntraError for unknown or mixed resources."""
    raw = (scope or "").split()
    resources: set[str] = set()
    permissions: list[str] = []
    reserved: set[str] = set()
    for item in raw:
        if item in RESERVED_SCOPES:
            reserved.add(item)
            continue
        if "/" in item:
            base, _, perm = item.rpartition("/")
            resource = RESOURCE_ALIASES.get(base) or RESOURCE_ALIASES.get(base.rstrip("/"))
            if resource is None:
                raise EntraError(
                    "invalid_resource",
                    500011,
                    f"The resource principal named {base} was not found in the tenant.",
                )
        else:
            resource, perm = GRAPH_RESOURCE, item
        resources.add(resource)
        permissions.append(perm)
    if len(resources) > 1:
        raise EntraError(
            "invalid_scope",
            28000,
            "Provided value for the input parameter scope is not valid "
            "because it contains more than one resource.",
        )
    resource = resources.pop() if resources else GRAPH_RESOURCE
    if ".default" in permissions and len(permissions) > 1:
        raise EntraError(
            "invalid_scope",
            70011,
            "The provided value for the input parameter 'scope' is not "
            "valid: .default cannot be combined with other scopes.",
        )
    return ScopeRequest(raw, resource, permissions, reserved)


def loopback_redirect(uri: str | None) -> bool:
    """Redirect URIs the sandbox accepts: http on 127.0.0.1 or localhost, any port."""
    if not uri:
        return False
    parsed = urlparse(uri)
    return parsed.scheme == "http" and parsed.hostname in ("127.0.0.1", "localhost")


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


class Entra:
    """The token service: one per sandbox, stateful for device codes and auth codes."""

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.directory = ctx.directory
        self.tokens = ctx.tokens
        self._lock = threading.Lock()
        self._device_codes: dict[str, DeviceCode] = {}
        self._auth_codes: dict[str, AuthCode] = {}

    def reset(self) -> None:
        with self._lock:
            self._device_codes.clear()
            self._auth_codes.clear()

    # --- helpers --------------------------------------------------------------------------
    def tenant_for(self, segment: str) -> Tenant | None:
        """The tenant of a URL segment; None for common/organizations (resolved later)."""
        if segment.lower() in MULTI_TENANT_SEGMENTS:
            return None
        tenant = self.directory.tenant(segment)
        if tenant is None:
            raise EntraError(
                "invalid_request",
                90002,
                f"Tenant '{segment}' not found. Check to make sure you have the correct tenant ID "
                "and are signing into the correct cloud.",
            )
        return tenant

    def app_for(self, client_id: str | None, tenant: Tenant | None) -> tuple[App, Tenant]:
        app = self.directory.app(client_id)
        if app is None or (tenant is not None and app.tenant_id != tenant.id):
            where = tenant.domain if tenant else "the sandbox"
            raise EntraError(
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{where}'. This can happen if the application has not been installed by the "
                "administrator of the tenant or consented to by any user in the tenant.",
            )
        return app, tenant or self.directory.tenant(app.tenant_id)

    def token_url(self, request: Request) -> str:
        return f"{request.base_url}{request.path}"

    def authenticate_client(self, request: Request, form: dict[str, str], app: App) -> str:
        """Check the client's secret or assertion: "1" secret, "2" certificate, "0" public."""
        secret = form.get("client_secret")
        auth = request.headers.get("authorization") or ""
        if auth.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(auth[6:]).decode()
                secret = unquote(decoded.partition(":")[2])
            except (ValueError, UnicodeDecodeError):
                secret = ""
        if secret is not None:
            if any(hmac.compare_digest(secret.encode(), s.encode()) for s in app.secrets):
                return "1"
            raise EntraError(
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is "
                f"the client secret value, not the client secret ID, for a secret added to app "
                f"'{app.client_id}'.",
                status=401,
            )
        assertion = form.get("client_assertion")
        if assertion:
            self._check_assertion(request, assertion, app)
            return "2"
        return "0"

    def _check_assertion(self, request: Request, assertion: str, app: App) -> None:
        def refuse(reason: str) -> EntraError:
            return EntraError(
                "invalid_client",
                700027,
                f"Client assertion failed signature validation. [Reason - {reason}]",
                status=401,
            )

        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError as exc:
            raise refuse("The assertion is not a JWT.") from exc
        alg = header.get("alg")
        if alg not in ("RS256", "PS256"):
            raise refuse(f"Unsupported algorithm {alg}.")
        for pem in app.certificates:
            cert = x509.load_pem_x509_certificate(pem.encode())
            x5t = b64url(cert.fingerprint(hashes.SHA1()))  # noqa: S303 - x5t is SHA-1 by spec
            x5t256 = b64url(cert.fingerprint(hashes.SHA256()))
            # MSAL pads its thumbprints with "="; compare without padding.
            sent = {k: str(header[k]).rstrip("=") for k in ("x5t", "x5t#S256") if k in header}
            if sent.get("x5t", x5t) != x5t or sent.get("x5t#S256", x5t256) != x5t256:
                continue
            try:
                claims = jwt.decode(
                    assertion,
                    cert.public_key(),
                    algorithms=[alg],
                    options={"verify_aud": False, "require": ["exp", "iss", "sub", "aud"]},
                )
            except jwt.PyJWTError:
                continue
            if claims["iss"].lower() != app.client_id or claims["sub"].lower() != app.client_id:
                raise refuse("The assertion's iss and sub must be the client id.")
            audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
            if not any(
                a.startswith(request.base_url) and a.endswith("/oauth2/v2.0/token")
                for a in audiences
            ):
                raise refuse("The assertion's audience is not this token endpoint.")
            return
        raise refuse("The key was not found.")

    def _granted(self, app: App, scopes: ScopeRequest) -> list[str]:
        """Delegated permissions to put in `scp`; raises when the app was not consented them."""
        if scopes.resource == VAULT_RESOURCE:
            if app.key_vault == "none":
                raise self._no_consent(app)
            return ["user_impersonation"]
        configured = app.delegated_permissions - RESERVED_SCOPES
        if scopes.is_default:
            return sorted(configured)
        if not scopes.permissions:
            return ["User.Read"] if "User.Read" in configured else []
        missing = [p for p in scopes.permissions if p not in configured]
        if missing:
            raise self._no_consent(app)
        return list(dict.fromkeys(scopes.permissions))

    @staticmethod
    def _no_consent(app: App) -> EntraError:
        return EntraError(
            "invalid_grant",
            65001,
            f"The user or administrator has not consented to use the application with ID "
            f"'{app.client_id}' named '{app.display_name}'. Send an interactive authorization "
            "request for this user and resource.",
            suberror="consent_required",
        )

    def delegated_response(
        self,
        request: Request,
        form: dict[str, str],
        tenant: Tenant,
        app: App,
        user: User,
        scope: str,
        client_auth: str,
        nonce: str | None = None,
    ) -> Response:
        scopes = parse_scopes(scope)
        scp = self._granted(app, scopes)
        access, expires_in = self.tokens.access_token(
            tenant_id=tenant.id,
            client_id=app.client_id,
            resource=scopes.resource,
            user=user,
            scopes=scp,
            client_auth=client_auth,
        )
        granted = [s for s in scopes.raw if s not in RESERVED_SCOPES] or [
            f"{scopes.resource}/{p}" for p in scp
        ]
        granted += sorted(scopes.reserved)
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(granted),
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

    # --- the token endpoint ---------------------------------------------------------------
    def token(self, request: Request) -> Response:
        try:
            return self._token(request)
        except EntraError as exc:
            return entra_error_response(exc, request)

    def _token(self, request: Request) -> Response:
        form = request.form()
        tenant = self.tenant_for(request.params["tenant"])
        client_id = form.get("client_id")
        auth = request.headers.get("authorization") or ""
        if not client_id and auth.lower().startswith("basic "):
            try:
                client_id = unquote(base64.b64decode(auth[6:]).decode().partition(":")[0])
            except (ValueError, UnicodeDecodeError):
                client_id = None
        if not client_id:
            raise EntraError(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_id'.",
            )
        app, tenant = self.app_for(client_id, tenant)
        request.log["tenant"] = tenant.domain
        request.log["app"] = app.client_id
        client_auth = self.authenticate_client(request, form, app)
        grant = form.get("grant_type")
        if grant == "client_credentials":
            return self._client_credentials(request, form, tenant, app, client_auth)
        if grant == "password":
            return self._password(request, form, tenant, app, client_auth)
        if grant == "refresh_token":
            return self._refresh(request, form, tenant, app, client_auth)
        if grant == DEVICE_CODE_GRANT:
            return self._device_code(request, form, tenant, app, client_auth)
        if grant == "authorization_code":
            return self._auth_code(request, form, tenant, app, client_auth)
        raise EntraError(
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{grant}'.",
        )

    def _client_credentials(
        self, request: Request, form: dict[str, str], tenant: Tenant, app: App, client_auth: str
    ) -> Response:
        if client_auth == "0":
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
        if scopes.resource == VAULT_RESOURCE:
            roles: list[str] = []
        else:
            roles = sorted(app.application_permissions)
        access, expires_in = self.tokens.access_token(
            tenant_id=tenant.id,
            client_id=app.client_id,
            resource=scopes.resource,
            roles=roles,
            client_auth=client_auth,
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
        self, request: Request, form: dict[str, str], tenant: Tenant, app: App, client_auth: str
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
        if user.mfa_required:
            raise self._mfa_required(parse_scopes(form.get("scope")).resource)
        return self.delegated_response(
            request, form, tenant, app, user, form.get("scope", ""), client_auth
        )

    @staticmethod
    def _mfa_required(resource: str) -> EntraError:
        return EntraError(
            "interaction_required",
            50076,
            "Due to a configuration change made by your administrator, or because you moved to a "
            f"new location, you must use multi-factor authentication to access '{resource}'.",
            suberror="basic_action",
        )

    def _refresh(
        self, request: Request, form: dict[str, str], tenant: Tenant, app: App, client_auth: str
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
        if time.time() - record["last_used"] > self.tokens.refresh_inactivity:
            code, text = REVOKE_ERRORS["invalid_grant"]
            raise EntraError("invalid_grant", code, text.format(issued=issued))
        self.tokens.touch_refresh(token)
        scope = form.get("scope") or record["scopes"]
        return self.delegated_response(request, form, tenant, app, user, scope, client_auth)

    # --- device code ----------------------------------------------------------------------
    def devicecode(self, request: Request) -> Response:
        try:
            form = request.form()
            tenant = self.tenant_for(request.params["tenant"])
            app, tenant = self.app_for(form.get("client_id"), tenant)
            request.log["tenant"] = tenant.domain
            request.log["app"] = app.client_id
            parse_scopes(form.get("scope"))
        except EntraError as exc:
            return entra_error_response(exc, request)
        alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
        user_code = "".join(secrets.choice(alphabet) for _ in range(9))
        lifetime = self.tokens.device_code_lifetime
        entry = DeviceCode(
            device_code=secrets.token_urlsafe(32),
            user_code=user_code,
            client_id=app.client_id,
            tenant_id=tenant.id,
            scope=form.get("scope", ""),
            expires_at=time.time() + lifetime,
        )
        with self._lock:
            self._device_codes[entry.device_code] = entry
        uri = f"{request.base_url}/devicelogin"
        return Response.json(
            {
                "user_code": user_code,
                "device_code": entry.device_code,
                "verification_uri": uri,
                "expires_in": lifetime,
                "interval": 5,
                "message": f"To sign in, use a web browser to open the page {uri} and enter the "
                f"code {user_code} to authenticate.",
            }
        )

    def approve_device_code(self, user_code: str, upn: str, *, deny: bool = False) -> str | None:
        """Approve (or deny) a pending device code as `upn`; returns a problem, or None."""
        wanted = user_code.replace("-", "").strip().upper()
        with self._lock:
            entry = next((d for d in self._device_codes.values() if d.user_code == wanted), None)
            if entry is None:
                return f"unknown user code {user_code}"
            if entry.expires_at < time.time():
                return "the device code has expired"
            user = self.directory.user(entry.tenant_id, upn)
            if user is None:
                return f"{upn} is not a user of the device code's tenant"
            entry.user = user
            entry.status = "denied" if deny else "approved"
        return None

    def _device_code(
        self, request: Request, form: dict[str, str], tenant: Tenant, app: App, client_auth: str
    ) -> Response:
        code = form.get("device_code", "")
        with self._lock:
            entry = self._device_codes.get(code)
            if entry is None or entry.client_id != app.client_id or entry.tenant_id != tenant.id:
                raise EntraError(
                    "invalid_grant",
                    70000,
                    "The provided value for the input parameter 'device_code' is not valid.",
                )
            if entry.expires_at < time.time():
                self._device_codes.pop(code, None)
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
            self._device_codes.pop(code, None)
        if entry.status == "denied":
            raise EntraError("authorization_declined", 70000, "The user declined the sign-in.")
        assert entry.user is not None
        return self.delegated_response(
            request, form, tenant, app, entry.user, entry.scope, client_auth
        )

    def devicelogin(self, request: Request) -> Response:
        """The page a person opens to enter a device code and sign in."""
        if request.method == "GET":
            return Response.html(signin.device_page())
        form = request.form()
        code = form.get("user_code", "").replace("-", "").strip().upper()
        with self._lock:
            entry = next((d for d in self._device_codes.values() if d.user_code == code), None)
        if entry is None:
            return Response.html(signin.device_page(error="That code is not valid."), 400)
        user = self.directory.user(entry.tenant_id, form.get("username"))
        if user is None or not self.directory.check_password(user, form.get("password", "")):
            return Response.html(
                signin.device_page(error="Wrong user name or password.", code=code), 400
            )
        self.approve_device_code(code, user.upn)
        return Response.html(signin.done_page("You have signed in. You may close this window."))

    # --- authorization code ---------------------------------------------------------------
    def authorize(self, request: Request) -> Response:
        if request.method == "POST":
            form = request.form()
            params = dict(parse_qsl(form.get("q", ""), keep_blank_values=True))
        else:
            form = {}
            params = {k: v[0] for k, v in request.query.items()}
        try:
            tenant = self.tenant_for(request.params["tenant"])
            app, tenant = self.app_for(params.get("client_id"), tenant)
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
            return self._redirect(params, {"error": "unsupported_response_type"})
        try:
            scopes = parse_scopes(params.get("scope"))
            requested = self._granted_preview(app, scopes)
        except EntraError as exc:
            return self._redirect(
                params,
                {"error": exc.error, "error_description": f"AADSTS{exc.code}: {exc.description}"},
            )
        query = urlencode(params)
        if request.method == "GET":
            return Response.html(
                signin.signin_page(app, tenant, query, requested, params.get("login_hint", ""))
            )
        if form.get("action") != "accept":
            return self._redirect(
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
        request.log["user"] = user.upn
        code = "sbx-code." + secrets.token_urlsafe(32)
        with self._lock:
            self._auth_codes[code] = AuthCode(
                client_id=app.client_id,
                tenant_id=tenant.id,
                redirect_uri=redirect_uri,
                scope=params.get("scope", ""),
                challenge=params.get("code_challenge"),
                method=params.get("code_challenge_method", "plain"),
                nonce=params.get("nonce"),
                user=user,
                expires_at=time.time() + 600,
            )
        return self._redirect(params, {"code": code, "session_state": str(uuid.uuid4())})

    def _granted_preview(self, app: App, scopes: ScopeRequest) -> list[str]:
        return self._granted(app, scopes) + sorted(scopes.reserved)

    @staticmethod
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

    def _auth_code(
        self, request: Request, form: dict[str, str], tenant: Tenant, app: App, client_auth: str
    ) -> Response:
        code = form.get("code", "")
        with self._lock:
            entry = self._auth_codes.get(code)
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
        scope = form.get("scope") or entry.scope
        return self.delegated_response(
            request, form, tenant, app, entry.user, scope, client_auth, nonce=entry.nonce
        )

    # --- discovery ------------------------------------------------------------------------
    def openid_configuration(self, request: Request) -> Response:
        segment = request.params["tenant"]
        try:
            tenant = self.tenant_for(segment)
        except EntraError as exc:
            return entra_error_response(exc, request)
        base = f"{request.base_url}/{segment}"
        issuer = self.tokens.issuer(tenant.id if tenant else "{tenantid}")
        return Response.json(
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": issuer,
                "request_uri_parameter_supported": False,
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "claims_supported": [
                    "sub",
                    "iss",
                    "aud",
                    "exp",
                    "iat",
                    "nonce",
                    "preferred_username",
                    "name",
                    "tid",
                    "ver",
                    "oid",
                ],
                "tenant_region_scope": None,
                "cloud_instance_name": "sandbox.local",
                "cloud_graph_host_name": "graph.windows.net",
                "msgraph_host": "graph.microsoft.com",
            }
        )

    def user_realm(self, request: Request) -> Response:
        """MSAL's user realm discovery before a password grant: every sandbox user is managed."""
        domain = request.params["user"].rpartition("@")[2]
        return Response.json(
            {
                "ver": "1.0",
                "account_type": "Managed",
                "domain_name": domain,
                "cloud_instance_name": "sandbox.local",
                "cloud_audience_urn": "urn:federation:sandbox",
            }
        )

    def keys(self, request: Request) -> Response:
        try:
            self.tenant_for(request.params["tenant"])
        except EntraError as exc:
            return entra_error_response(exc, request)
        return Response.json(self.tokens.jwks())


def register(ctx: SandboxContext) -> None:
    """Add the Entra ID routes (per tenant id or domain) to ctx.router."""
    entra = Entra(ctx)
    ctx.extras["entra"] = entra
    ctx.extras.setdefault("reset_hooks", []).append(entra.reset)
    t = r"/(?P<tenant>[A-Za-z0-9.-]+)"
    ctx.router.add(
        "GET", t + r"/v2\.0/\.well-known/openid-configuration", entra.openid_configuration
    )
    ctx.router.add("GET", t + r"/discovery/v2\.0/keys", entra.keys)
    ctx.router.add("POST", t + r"/oauth2/v2\.0/token", entra.token)
    ctx.router.add("POST", t + r"/oauth2/v2\.0/devicecode", entra.devicecode)
    ctx.router.add(["GET", "POST"], t + r"/oauth2/v2\.0/authorize", entra.authorize)
    ctx.router.add(["GET", "POST"], "/devicelogin", entra.devicelogin)
    ctx.router.add("GET", r"/common/userrealm/(?P<user>[^/]+)", entra.user_realm)
