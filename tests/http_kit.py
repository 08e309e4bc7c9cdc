"""Call an HTTP function in-process the way the worker does under HTTP streams: a FastAPI Request
built from an ASGI scope, the function awaited, its Response run as an ASGI app."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from azurefunctions.extensions.http.fastapi import Request


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def make_request(
    method: str,
    url: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    route_params: dict[str, str] | None = None,
) -> Request:
    split = urlsplit(url)
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    raw.append((b"host", split.netloc.encode("latin-1")))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": split.scheme,
        "path": split.path,
        "raw_path": split.path.encode("latin-1"),
        "query_string": split.query.encode("latin-1"),
        "headers": raw,
        "path_params": dict(route_params or {}),
    }
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            await asyncio.Event().wait()  # no disconnect until the call ends
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


def call_function(function: Any, request: Request) -> Answer:
    """Await `function(request)` and collect the answer its Response sends."""

    async def run() -> Answer:
        response = await function(request)
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await response(request.scope, request.receive, send)
        start = sent[0]
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in start["headers"]}
        body = b"".join(m.get("body", b"") for m in sent[1:])
        return Answer(start["status"], headers, body)

    return asyncio.run(run())
