"""The control API under /_sandbox/ (loopback only): reset, request log, revoke, faults, files."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import mimetypes
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from sandbox import files
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

    add("POST", "/reset", reset)
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
