"""Serve the app's HTTP triggers on 127.0.0.1 under /<routePrefix>/, with function keys."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func

from devhost import peak_memory
from devhost.app_index import IndexedFunction, QueueOutput
from devhost.invoke import invoke, to_http_response
from devhost.keys import HostKeys

log = logging.getLogger("devhost.http")

# The host's default limit (httpRuntime maxRequestBodySize, 100 MB).
MAX_BODY_BYTES = 100 * 1024 * 1024
# Headers that describe the devhost's own framing of the response, not the function's.
_HOP_BY_HOP = {"content-length", "transfer-encoding", "connection", "keep-alive"}

OutputSink = Callable[[list[tuple[QueueOutput, Any]]], None]


class _BodyTooLarge(Exception):
    pass


def _route_order(function: IndexedFunction) -> tuple[int, int]:
    """Literal routes before parameterised ones, longer before shorter (host route precedence)."""
    assert function.route is not None
    return (len(function.route.params), -len(function.route.template))


class HttpHost:
    """Finds the function for a request, checks its key, invokes it and renders the response."""

    def __init__(
        self,
        functions: list[IndexedFunction],
        keys: HostKeys,
        root: Path,
        route_prefix: str = "api",
        deliver_outputs: OutputSink | None = None,
    ) -> None:
        self.functions = sorted(functions, key=_route_order)
        self.keys = keys
        self.root = root
        self.prefix = f"/{route_prefix.strip('/')}/" if route_prefix.strip("/") else "/"
        self.deliver_outputs = deliver_outputs

    def find(self, method: str, path: str) -> tuple[IndexedFunction | None, dict[str, str], set]:
        """The function for `method path`, its route params, and the methods the path allows."""
        if not path.startswith(self.prefix) and path != self.prefix.rstrip("/"):
            return None, {}, set()
        relative = path[len(self.prefix) :]
        allowed: set[str] = set()
        for function in self.functions:
            assert function.route is not None
            params = function.route.match(relative)
            if params is None:
                continue
            if not function.methods or method in function.methods:
                return function, params, allowed
            allowed.update(function.methods)
        return None, {}, allowed

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes, base_url: str
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Status, headers and body for one request; never raises for a function's error."""
        split = urlsplit(target)
        function, route_params, allowed = self.find(method, split.path)
        if function is None:
            if allowed:
                return 405, [("Allow", ", ".join(sorted(allowed)))], b""
            return 404, [], b""
        params: dict[str, str] = {}
        for key, value in parse_qsl(split.query, keep_blank_values=True):
            params.setdefault(key, value)
        lower = {k.lower(): v for k, v in headers.items()}
        presented = lower.get("x-functions-key") or params.get("code")
        if not self.keys.allows(function.auth_level, presented):
            # The real host answers 401 with an empty body and says nothing about why.
            return 401, [], b""
        request = func.HttpRequest(
            method=method,
            url=base_url + target,
            headers=headers,
            params=params,
            route_params=route_params,
            body=body,
        )
        started = time.perf_counter()
        baseline = peak_memory.reset() if peak_memory.enabled() else None
        try:
            outcome = invoke(function, request, self.root)
            response = to_http_response(outcome.result)
            if outcome.outputs and self.deliver_outputs:
                self.deliver_outputs(outcome.outputs)
        except Exception:
            # The traceback is for the developer's console, never for the caller.
            log.exception("Executed 'Functions.%s' (Failed)", function.name)
            return 500, [], b""
        elapsed = (time.perf_counter() - started) * 1000
        if baseline is not None:
            growth = peak_memory.peak() - baseline
            log.info("peak memory of Functions.%s: +%d bytes", function.name, growth)
        log.info(
            "%s %s -> %d (Functions.%s, %.0f ms)",
            method,
            split.path,
            response.status_code,
            function.name,
            elapsed,
        )
        out_headers = [(k, v) for k, v in response.headers.items() if k.lower() not in _HOP_BY_HOP]
        if not any(k.lower() == "content-type" for k, _ in out_headers) and response.mimetype:
            content_type = response.mimetype
            if response.charset and response.mimetype.startswith("text/"):
                content_type += f"; charset={response.charset}"
            out_headers.append(("Content-Type", content_type))
        return response.status_code, out_headers, response.get_body() or b""


def _make_handler(host: HttpHost) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "devhost"

        def log_message(self, format: str, *args: Any) -> None:
            log.debug(format, *args)

        def _read_body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks, total = [], 0
                while True:
                    size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                    if size == 0:
                        # Trailer section ends with an empty line.
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(chunks)
                    total += size
                    if total > MAX_BODY_BYTES:
                        raise _BodyTooLarge
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                raise _BodyTooLarge
            return self.rfile.read(length) if length > 0 else b""

        def _base_url(self) -> str:
            # Behind a proxy (or a tunnel) the app builds links from X-Forwarded-*.
            proto = self.headers.get("X-Forwarded-Proto", "http").split(",")[0].strip()
            hostname = self.headers.get("X-Forwarded-Host") or self.headers.get("Host")
            if not hostname:
                address, port = self.server.server_address[:2]
                hostname = f"{address}:{port}"
            return f"{proto}://{hostname.split(',')[0].strip()}"

        def _serve(self) -> None:
            try:
                body = self._read_body()
            except _BodyTooLarge:
                self._send(413, [], b"")
                self.close_connection = True
                return
            except ValueError:
                self._send(400, [], b"")
                self.close_connection = True
                return
            headers: dict[str, str] = {}
            for key, value in self.headers.items():
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
            status, out_headers, out_body = host.handle(
                self.command, self.path, headers, body, self._base_url()
            )
            self._send(status, out_headers, out_body)

        def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD" and body:
                self.wfile.write(body)

        def __getattr__(self, name: str) -> Any:
            # Every method (TRACE, PROPFIND, ...) reaches routing, which answers 405 for the
            # ones a function does not declare, instead of the stdlib's 501.
            if name.startswith("do_"):
                return self._serve
            raise AttributeError(name)

    return Handler


class DevhostServer(ThreadingHTTPServer):
    """A threading HTTP server whose request threads do not keep the process alive."""

    daemon_threads = True
    # Many parallel test clients: a deeper accept queue than the stdlib's 5.
    request_queue_size = 128


def make_server(host: HttpHost, port: int, address: str = "127.0.0.1") -> DevhostServer:
    """Bind (port 0 picks a free one); call serve_forever() to run it."""
    return DevhostServer((address, port), _make_handler(host))
