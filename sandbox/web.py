"""Tiny HTTP toolkit for the sandbox: request and response objects and a regex router."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs


class Headers(dict):
    """Case-insensitive header mapping (keys stored lower-case)."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__()
        for key, value in items:
            self[key] = value

    def __setitem__(self, key: str, value: str) -> None:
        super().__setitem__(key.lower(), value)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)


class BadRequestBody(ValueError):
    """The request body is not the JSON the endpoint needs."""


@dataclass
class Request:
    """One parsed HTTP request as the handlers see it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Headers
    body: bytes
    base_url: str = ""
    client_ip: str = "127.0.0.1"
    params: dict[str, str] = field(default_factory=dict)
    # Scratch space for the request log (tenant, app, user) and for faults.
    log: dict[str, Any] = field(default_factory=dict)
    fault_delay: float = 0.0
    # Set instead of `body` for routes registered with streams_body=True: a file-like reader.
    stream: Any = None

    @classmethod
    def from_target(cls, method: str, target: str, headers: Headers, body: bytes, **kw: Any):
        path, _, qs = target.partition("?")
        return cls(method.upper(), path, parse_qs(qs, keep_blank_values=True), headers, body, **kw)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        """Parse the body as JSON; raises BadRequestBody when it is not."""
        try:
            return json.loads(self.body or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequestBody(str(exc)) from exc

    def form(self) -> dict[str, str]:
        """Parse an application/x-www-form-urlencoded body (first value of each field)."""
        parsed = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[0] for k, v in parsed.items()}

    def apply_fault_delay(self) -> None:
        """Sleep for an injected `delay` fault once (handlers that hold a slot call it inside)."""
        delay, self.fault_delay = self.fault_delay, 0.0
        if delay > 0:
            time.sleep(delay)


@dataclass
class Response:
    """A response; `body` may be bytes or an iterable of byte chunks (sent chunked)."""

    status: int = 200
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, obj: Any, status: int = 200, headers: dict[str, str] | None = None):
        data = json.dumps(obj, separators=(",", ":")).encode()
        hdrs = {"Content-Type": "application/json; charset=utf-8"}
        hdrs.update(headers or {})
        return cls(status, data, hdrs)

    @classmethod
    def html(cls, text: str, status: int = 200, headers: dict[str, str] | None = None):
        hdrs = {"Content-Type": "text/html; charset=utf-8"}
        hdrs.update(headers or {})
        return cls(status, text.encode(), hdrs)

    @classmethod
    def redirect(cls, location: str, status: int = 302):
        return cls(status, b"", {"Location": location})


Handler = Callable[[Request], Response]


@dataclass
class Route:
    methods: frozenset[str]
    pattern: re.Pattern[str]
    handler: Handler
    consumes_delay: bool = False
    streams_body: bool = False


class Router:
    """Routes by method and a full-match regex over the URL path (named groups become params)."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(
        self,
        methods: str | Iterable[str],
        pattern: str,
        handler: Handler,
        *,
        consumes_delay: bool = False,
        streams_body: bool = False,
        flags: int = 0,
    ) -> None:
        """Register a handler; consumes_delay: it calls request.apply_fault_delay() itself;
        streams_body: the body is not read up front, the handler reads request.stream."""
        names = [methods] if isinstance(methods, str) else list(methods)
        self.routes.append(
            Route(
                frozenset(m.upper() for m in names),
                re.compile(pattern, flags),
                handler,
                consumes_delay,
                streams_body,
            )
        )

    def route(self, methods: str | Iterable[str], pattern: str, **kw: Any):
        def decorate(handler: Handler) -> Handler:
            self.add(methods, pattern, handler, **kw)
            return handler

        return decorate

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | bool | None:
        """The route and its params; False when the path exists for other methods; None if none."""
        path_known = False
        for route in self.routes:
            m = route.pattern.fullmatch(path)
            if not m:
                continue
            if method.upper() in route.methods:
                return route, {k: v for k, v in m.groupdict().items() if v is not None}
            path_known = True
        return False if path_known else None
