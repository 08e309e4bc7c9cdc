"""The Graph envelope: token, route, mailbox, throttle slot and errors around each operation."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import unquote, unquote_plus

from sandbox.context import GRAPH_RESOURCE, Principal
from sandbox.graph import bodies, ids, odata
from sandbox.graph.call import Call
from sandbox.graph.errors import (
    GraphError,
    access_denied,
    bad_request,
    error_response,
    id_headers,
    invalid_user,
    too_large,
)
from sandbox.graph.messages import folder_ref
from sandbox.graph.services import Services
from sandbox.tokens import TokenError
from sandbox.web import BadRequestBody, Request, Response

Op = Callable[[Call], Response]
# URL segments that carry item ids. A raw '+' in one reads as a space (so an id that was not
# percent-encoded is malformed, as Exchange answers it); '=' may stay raw, as in Microsoft's own
# examples (`/me/messages/AAMkADI5MAAIT3drCAAA=/attachments/createUploadSession`).
_ID_PARAMS = {"message": "message", "attachment": "attachment"}
_UPLOAD_METHODS = frozenset({"PATCH", "POST", "PUT"})
_TOKEN_MESSAGES = {
    "missing": "Access token is empty.",
    "expired": "Lifetime validation failed, the token is expired.",
}


class GraphApi:
    """Routes `/v1.0/...` to the operations modules."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.routes: list[tuple[frozenset[str], re.Pattern[str], Op]] = []

    @property
    def store(self):  # the web view reads mail state through here
        return self.svc.store

    def add(self, routes: list[tuple[str, str, Op]]) -> None:
        for methods, pattern, op in routes:
            self.routes.append((frozenset(methods.split()), re.compile(pattern, re.I), op))

    def handle(self, req: Request) -> Response:
        """Every /v1.0 request: size, token, route, mailbox, throttle, operation, errors."""
        try:
            response = self._handle(req)
        except GraphError as err:
            response = error_response(req, err)
        except odata.ODataError as exc:
            response = error_response(req, bad_request(str(exc), exc.code))
        except BadRequestBody as exc:
            response = error_response(req, bad_request(str(exc)))
        response.headers.update(id_headers(req))
        return response

    def _handle(self, req: Request) -> Response:
        self.svc.outbox.release()
        maximum = int(self.svc.limits.get("maxRequestBytes", 4 * 1024 * 1024))
        if len(req.body) > maximum:
            raise too_large(maximum)
        try:
            principal = self.svc.ctx.tokens.verify(
                req.headers.get("authorization"), GRAPH_RESOURCE, request=req
            )
        except TokenError as exc:
            message = _TOKEN_MESSAGES.get(exc.code, exc.message)
            raise GraphError(401, "InvalidAuthenticationToken", message) from exc
        op, raw = self._match(req.method, req.params.get("rest", ""))
        mailbox = self._mailbox(principal, unquote(raw["user"]) if raw.get("user") else None)
        if principal.kind == "app" and not self.svc.directory.app_scope_allows(
            principal.app_id, mailbox.address
        ):
            # Exchange RBAC for Applications: a mailbox outside the app's management scope.
            raise access_denied()
        params = self._params(raw)
        self.svc.store.ensure_mailbox(mailbox.id)
        # Outlook's limits are "evaluated for each app ID and mailbox combination"
        # (throttling-limits.md): every user of one app shares them.
        key = (principal.tenant_id, principal.app_id, mailbox.id)
        with self.svc.throttle.slot(key):
            if req.method in _UPLOAD_METHODS:
                self.svc.throttle.count_upload(key, len(req.body))
            # Inside the slot: an injected `delay` fault then holds a concurrency slot, as a
            # slow Exchange backend would.
            req.apply_fault_delay()
            response = op(Call(req, principal, mailbox, params, self.svc.directory))
        prefer = req.headers.get("prefer") or ""
        applied = []
        if 'idtype="immutableid"' in prefer.lower():
            applied.append('IdType="ImmutableId"')
        body_type = bodies.preferred(prefer)
        if body_type:
            applied.append(f'outlook.body-content-type="{body_type}"')
        if applied:
            response.headers["Preference-Applied"] = ", ".join(applied)
        return response

    def _match(self, method: str, rest: str) -> tuple[Op, dict[str, str | None]]:
        """The operation and its raw (still percent-encoded) URL parameters; 405 / 400."""
        known = False
        for methods, pattern, op in self.routes:
            m = pattern.fullmatch(rest)
            if m:
                if method in methods:
                    return op, m.groupdict()
                known = True
        if known:
            raise GraphError(405, "Request_BadRequest", f"The method {method} is not allowed.")
        segment = rest.split("/")[-1] if rest else ""
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")

    @staticmethod
    def _params(raw: dict[str, str | None]) -> dict[str, str]:
        """Percent-decoded URL parameters; ids must be well-formed (400 otherwise)."""
        params: dict[str, str] = {}
        for key, value in raw.items():
            if value is None:
                continue
            if key in _ID_PARAMS:
                params[key] = ids.check(unquote_plus(value), _ID_PARAMS[key])
            elif key == "folder":
                params[key] = folder_ref(unquote_plus(value))
            else:
                params[key] = unquote(value)
        return params

    def _mailbox(self, principal: Principal, user: str | None):
        if user is None:
            if principal.kind != "user":
                raise bad_request("/me request is only valid with delegated authentication flow.")
            user = principal.user or ""
        name = user.strip("'\"")
        mailbox = self.svc.directory.mailbox(principal.tenant_id, name)
        if mailbox is None:
            raise invalid_user(name)
        return mailbox
