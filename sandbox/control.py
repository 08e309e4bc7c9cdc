"""The control API under /_sandbox/ (loopback only): reset, request log, revoke, user states,
the sandbox clock, mailbox permissions and app scopes, faults, files."""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import mimetypes
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from sandbox import files
from sandbox.clock import GLOBAL, user_key
from sandbox.context import SandboxContext
from sandbox.faults import FaultSpecError
from sandbox.web import Request, Response

PREFIX = "/_sandbox"


def _error(status: int, code: str, message: str) -> Response:
    return Response.json({"error": {"code": code, "message": message}}, status)


def _loopback_only(handler):
    def wrapped(request: Request) -> Response:
        try:
            loopback = ipaddress.ip_address(request.client_ip).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            return _error(403, "Forbidden", "The control API answers loopback clients only.")
        return handler(request)

    return wrapped


def _iso(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).isoformat()


def _body(request: Request) -> dict[str, Any]:
    data = request.json() if request.body else {}
    return data if isinstance(data, dict) else {}


def register(ctx: SandboxContext) -> None:
    """Add the /_sandbox/ routes to ctx.router."""
    store = files.FileStore(ctx.state_dir / "files")

    def add(methods: str | list[str], pattern: str, handler, **kw: Any) -> None:
        ctx.router.add(methods, PREFIX + pattern, _loopback_only(handler), **kw)

    def reset(request: Request) -> Response:
        ctx.faults.clear()
        ctx.tokens.reset()
        ctx.directory.reset()
        store.clear()
        for hook in list(ctx.extras.get("reset_hooks", [])):
            hook()
        return Response(204)

    def info(request: Request) -> Response:
        tenants = [
            {"id": t.id, "domain": t.domain, "displayName": t.display_name}
            for t in ctx.directory.tenants()
        ]
        return Response.json(
            {"baseUrl": ctx.base_url, "ca": str(ctx.state_dir / "ca.pem"), "tenants": tenants}
        )

    def requests_log(request: Request) -> Response:
        try:
            limit = int(request.arg("limit", "200") or 200)
            since = request.arg("since")
            since_seq = int(since) if since not in (None, "") else None
        except ValueError:
            return _error(400, "BadRequest", "limit and since must be integers")
        entries = ctx.request_log.recent(limit=limit, since=since_seq)
        return Response.json({"value": entries, "lastSeq": ctx.request_log.last_seq()})

    def revoke(request: Request) -> Response:
        body = _body(request)
        error = body.get("error", "invalid_grant")
        if error not in ("invalid_grant", "interaction_required"):
            return _error(400, "BadRequest", "error is 'invalid_grant' or 'interaction_required'")
        if error == "invalid_grant" and str(body.get("code", "")) == "50173":
            error = "invalid_grant:50173"  # revoked sessions instead of the inactivity code
        upn = request.params["upn"]
        for tenant in ctx.directory.tenants():
            user = ctx.directory.user(tenant.id, upn)
            if user is not None:
                ctx.tokens.revoke(tenant.id, user.id, error)
                return Response.json({"user": user.upn, "error": error.partition(":")[0]})
        return _error(404, "NotFound", f"No sandbox user {upn}")

    def approve_device_code(request: Request) -> Response:
        body = _body(request)
        user_code, upn = body.get("userCode"), body.get("user")
        if not user_code or not upn:
            return _error(400, "BadRequest", "userCode and user are required")
        problem = ctx.extras["entra"].approve_device_code(
            str(user_code), str(upn), deny=bool(body.get("deny"))
        )
        if problem:
            return _error(404 if "unknown" in problem else 400, "BadRequest", problem)
        return Response(204)

    def add_fault(request: Request) -> Response:
        try:
            fault = ctx.faults.add(_body(request))
        except FaultSpecError as exc:
            return _error(400, "BadRequest", str(exc))
        return Response.json(fault, 201)

    def list_faults(request: Request) -> Response:
        return Response.json({"value": ctx.faults.list()})

    def clear_faults(request: Request) -> Response:
        ctx.faults.clear()
        return Response(204)

    def delete_fault(request: Request) -> Response:
        if ctx.faults.remove(request.params["id"]):
            return Response(204)
        return _error(404, "NotFound", "No such fault")

    def expire_tokens(request: Request) -> Response:
        ctx.tokens.expire_all()
        return Response(204)

    def token_settings(request: Request) -> Response:
        if request.method == "POST":
            body = _body(request)
            if "accessTokenLifetimeSeconds" in body:
                seconds = int(body["accessTokenLifetimeSeconds"])
                if seconds < 1:
                    return _error(400, "BadRequest", "accessTokenLifetimeSeconds must be >= 1")
                ctx.tokens.access_lifetime = seconds
            if "deviceCodeLifetimeSeconds" in body:
                ctx.tokens.device_code_lifetime = int(body["deviceCodeLifetimeSeconds"])
        return Response.json(
            {
                "accessTokenLifetimeSeconds": ctx.tokens.access_lifetime,
                "deviceCodeLifetimeSeconds": ctx.tokens.device_code_lifetime,
            }
        )

    def add_certificate(request: Request) -> Response:
        pem = _body(request).get("certificate", "")
        try:
            cert = x509.load_pem_x509_certificate(str(pem).encode())
        except ValueError:
            return _error(400, "BadRequest", "certificate must be a PEM X.509 certificate")
        try:
            ctx.directory.add_certificate(request.params["clientId"], str(pem))
        except KeyError:
            return _error(404, "NotFound", "No such app registration")
        der_sha1 = cert.fingerprint(hashes.SHA1())  # noqa: S303 - x5t is SHA-1 by definition
        return Response.json(
            {
                "thumbprint": der_sha1.hex().upper(),
                "x5t#S256": base64.urlsafe_b64encode(cert.fingerprint(hashes.SHA256()))
                .rstrip(b"=")
                .decode(),
            },
            201,
        )

    def get_file(request: Request) -> Response:
        name = request.params["name"]
        if not files.NAME_RE.fullmatch(name):
            return _error(400, "BadRequest", "file names are letters, digits, '.', '_' and '-'")
        content_type = request.arg("contentType") or (
            mimetypes.guess_type(name)[0] or "application/octet-stream"
        )
        stored = store.path(name)
        if stored is not None and request.arg("size") is None:
            size = stored.stat().st_size
            body: Any = b"" if request.method == "HEAD" else files.iter_file(stored)
        else:
            try:
                size = int(request.arg("size", "") or "")
            except ValueError:
                return _error(404, "NotFound", "No uploaded file of that name (or give ?size=N)")
            if size < 0:
                return _error(400, "BadRequest", "size must not be negative")
            seed = request.arg("seed", "0") or "0"
            body = b"" if request.method == "HEAD" else files.iter_bytes(name, size, seed)
        headers = {"Content-Type": content_type, "Content-Length": str(size)}
        etag = hashlib.sha256(f"{name}:{size}:{request.arg('seed', '0')}".encode()).hexdigest()
        headers["ETag"] = f'"{etag[:32]}"'
        return Response(200, body, headers)

    def put_file(request: Request) -> Response:
        name = request.params["name"]
        if not files.NAME_RE.fullmatch(name):
            return _error(400, "BadRequest", "file names are letters, digits, '.', '_' and '-'")
        length = int(request.headers.get("Content-Length") or len(request.body or b""))
        if length > files.MAX_UPLOAD_BYTES:
            return _error(413, "RequestTooLarge", "uploads are at most 200 MB")
        size = store.save(name, request.stream, length)
        return Response.json({"name": name, "size": size}, 201)

    def find_user(upn: str):
        for tenant in ctx.directory.tenants():
            user = ctx.directory.user(tenant.id, upn)
            if user is not None:
                return user
        return None

    def clock(request: Request) -> Response:
        offsets = ctx.tokens.clock.offsets()
        return Response.json({"now": _iso(ctx.tokens.clock.now()), "offsets": offsets})

    def advance_clock(request: Request) -> Response:
        body = _body(request)
        try:
            seconds = float(body.get("seconds", 0)) + float(body.get("days", 0)) * 86400
        except (TypeError, ValueError):
            return _error(400, "BadRequest", "days and seconds are numbers")
        if seconds <= 0:
            return _error(400, "BadRequest", "give days or seconds > 0: the clock only moves on")
        upn = body.get("user")
        key, user = GLOBAL, None
        if upn:
            user = find_user(str(upn))
            if user is None:
                return _error(404, "NotFound", f"No sandbox user {upn}")
            key = user_key(user.tenant_id, user.id)
        ctx.tokens.clock.advance(seconds, key)
        now = ctx.tokens.clock.now(user.tenant_id, user.id) if user else ctx.tokens.clock.now()
        return Response.json(
            {
                "user": user.upn if user else None,
                "offsetSeconds": ctx.tokens.clock.offset(
                    *((user.tenant_id, user.id) if user else ())
                ),
                "now": _iso(now),
            }
        )

    def user_state(request: Request) -> Response:
        user = find_user(request.params["upn"])
        if user is None:
            return _error(404, "NotFound", f"No sandbox user {request.params['upn']}")
        states = ctx.tokens.user_states
        if request.method == "POST":
            body = _body(request)
            changes: dict[str, Any] = {}
            if "passwordExpired" in body:
                if not isinstance(body["passwordExpired"], bool):
                    return _error(400, "BadRequest", "passwordExpired is true or false")
                changes["password_expired"] = body["passwordExpired"]
            if "mfa" in body:
                changes["mfa"] = body["mfa"]
            try:
                state = states.change(user.tenant_id, user.id, **changes)
            except ValueError as exc:
                return _error(400, "BadRequest", str(exc))
        else:
            state = states.get(user.tenant_id, user.id)
        return Response.json(
            {"user": user.upn, "mfaRequiredBySeed": user.mfa_required, **state.public()}
        )

    def permissions(request: Request) -> Response:
        tenant = ctx.directory.tenant(request.arg("tenant") or "") or ctx.directory.tenants()[0]
        if request.method == "GET":
            return Response.json({"value": ctx.directory.grants(tenant.id)})
        body = _body(request)
        mailbox = ctx.directory.mailbox(tenant.id, str(body.get("mailbox", "")))
        trustee = ctx.directory.user(tenant.id, str(body.get("trustee", "")))
        if mailbox is None or trustee is None:
            return _error(404, "NotFound", "mailbox and trustee must exist in the tenant")
        add_rights, remove_rights = body.get("add", []), body.get("remove", [])
        if not isinstance(add_rights, list) or not isinstance(remove_rights, list):
            return _error(400, "BadRequest", "add and remove are lists of rights")
        try:
            rights = ctx.directory.change_rights(
                tenant.id,
                trustee.upn,
                mailbox.address,
                add=map(str, add_rights),
                remove=map(str, remove_rights),
            )
        except ValueError as exc:
            return _error(400, "BadRequest", str(exc))
        return Response.json(
            {"mailbox": mailbox.address, "trustee": trustee.upn, "rights": sorted(rights)}
        )

    def app_scope(request: Request) -> Response:
        mailboxes = _body(request).get("mailboxes") if request.method == "PUT" else None
        if mailboxes is not None and not (
            isinstance(mailboxes, list) and all(isinstance(m, str) for m in mailboxes)
        ):
            return _error(400, "BadRequest", "mailboxes is a list of addresses, or null")
        try:
            app = ctx.directory.set_app_scope(request.params["clientId"], mailboxes)
        except KeyError:
            return _error(404, "NotFound", "No such app registration")
        scope = None if app.mailbox_scope is None else sorted(app.mailbox_scope)
        return Response.json({"clientId": app.client_id, "mailboxScope": scope})

    add("POST", "/reset", reset)
    add("GET", "/clock", clock)
    add("POST", "/clock/advance", advance_clock)
    add(["GET", "POST"], r"/users/(?P<upn>[^/]+)/state", user_state)
    add(["GET", "POST"], "/permissions", permissions)
    add(["PUT", "DELETE"], r"/apps/(?P<clientId>[^/]+)/mailboxScope", app_scope)
    add("GET", "/info", info)
    add("GET", "/requests", requests_log)
    add("POST", r"/users/(?P<upn>[^/]+)/revoke", revoke)
    add("POST", "/devicecode/approve", approve_device_code)
    add("POST", "/faults", add_fault)
    add("GET", "/faults", list_faults)
    add("DELETE", "/faults", clear_faults)
    add("DELETE", r"/faults/(?P<id>[^/]+)", delete_fault)
    add("POST", "/tokens/expire", expire_tokens)
    add(["GET", "POST"], "/tokens/settings", token_settings)
    add("POST", r"/apps/(?P<clientId>[^/]+)/certificates", add_certificate)
    add(["GET", "HEAD"], r"/files/(?P<name>[^/]+)", get_file)
    add("PUT", r"/files/(?P<name>[^/]+)", put_file, streams_body=True)
