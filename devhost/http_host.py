"""Serve the app's HTTP triggers on 127.0.0.1 under /<routePrefix>/, with function keys.

Two ways to call a function, as the Python worker has: the classic one (the whole body read
first, an azure.functions.HttpRequest in, an HttpResponse out) and HTTP streams (the app
imported the FastAPI web extension: a Request whose body comes off the socket as the function
reads it, and a Response sent as it is produced; devhost.streams_worker).
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import azure.functions as func

from devhost import peak_memory
from devhost.app_index import IndexedFunction, QueueOutput
from devhost.asgi_exchange import AsgiExchange, abort
from devhost.http_framing import (
    BodyPieces,
    DeadlineReader,
    FramingError,
    Truncated,
    body_framing,
    read_body,
)
from devhost.invoke import invoke, to_http_response
from devhost.keys import HostKeys

log = logging.getLogger("devhost.http")

# The host's default limit (httpRuntime maxRequestBodySize, 100 MB).
MAX_BODY_BYTES = 100 * 1024 * 1024
# The host's admin API path that runs a non-HTTP function now (master key).
ADMIN_FUNCTIONS = "/admin/functions/"
# Headers that describe the devhost's own framing of the response, not the function's.
_HOP_BY_HOP = {"content-length", "transfer-encoding", "connection", "keep-alive"}

OutputSink = Callable[[list[tuple[QueueOutput, Any]]], None]
Answer = tuple[int, list[tuple[str, str]], bytes]

# Written raw: the request line may not even have been parsed.
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
)
_BUSY_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\n"
    b"Content-Length: 0\r\n\r\n"
)


@dataclass(frozen=True)
class Target:
    """The function a request goes to, its route parameters and its query parameters."""

    function: IndexedFunction
    route_params: dict[str, str]
    params: dict[str, str]


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
        runners: dict[str, Callable[[], None]] | None = None,
        streams: bool = False,
    ) -> None:
        self.functions = sorted(functions, key=_route_order)
        # HTTP streams (devhost.streams_mode): the worker's event loop runs every HTTP call.
        self.worker = None
        if streams:
            from devhost.streams_worker import StreamsWorker

            self.worker = StreamsWorker()
        # Non-HTTP functions `POST /admin/functions/{name}` may run now (the timers).
        self.runners = dict(runners or {})
        self.keys = keys
        self.root = root
        self.prefix = f"/{route_prefix.strip('/')}/" if route_prefix.strip("/") else "/"
        self.deliver_outputs = deliver_outputs

    def _run_now(
        self, method: str, split: Any, headers: dict[str, str]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        return _run_now_of(self, method, split, headers)

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

    def resolve(self, method: str, target: str, headers: dict[str, str]) -> Answer | Target:
        """The function for a request (with its route params and query params), or the answer
        the host gives without one: the admin API, 404, 405, 401 (nothing about why)."""
        split = urlsplit(target)
        if split.path.startswith(ADMIN_FUNCTIONS):
            return self._run_now(method, split, headers)
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
            return 401, [], b""
        return Target(function, route_params, params)

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes, base_url: str
    ) -> Answer:
        """Status, headers and body for one request, the classic way (the whole body read
        first); never raises for a function's error."""
        resolved = self.resolve(method, target, headers)
        if not isinstance(resolved, Target):
            return resolved
        function, route_params, params = resolved.function, resolved.route_params, resolved.params
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
            urlsplit(target).path,
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

    def serve_streamed(
        self, handler: Any, target: Target, body: BodyPieces, scope: dict[str, Any]
    ) -> None:
        """Run one HTTP-streams invocation on the worker's loop while `handler`'s thread does
        its socket I/O; then end the connection as the outcome requires."""
        from devhost.streams_worker import invoke_streamed

        assert self.worker is not None
        function = target.function
        report = peak_memory.enabled()
        marks = {"start": peak_memory.reset() if report else 0}

        def body_read() -> None:
            # From here on the function holds its body, as the classic host handed it over.
            if report:
                marks["reading"] = peak_memory.peak() - marks["start"]
                marks["start"] = peak_memory.reset()

        exchange = AsgiExchange(
            self.worker.loop,
            handler.connection,
            body,
            handler.command,
            handler.start_answer,
            handler.write_answer,
            body_read,
        )
        started = time.perf_counter()
        done = self.worker.submit(
            invoke_streamed(self.worker, function, scope, exchange, self.root, self.deliver_outputs)
        )
        exchange.serve(done)
        error = done.exception()
        outcome = exchange.outcome
        if error is not None:
            # The traceback is for the developer's console, never for the caller.
            log.error("Executed 'Functions.%s' (Failed)", function.name, exc_info=error)
        if outcome.refused and outcome.status is None:
            handler._refuse(outcome.refused)
        elif outcome.client_gone:
            handler.close_connection = True
        elif outcome.status is None:
            # What FastAPI's error middleware answers for the worker (the host passes it on).
            handler._send(
                500, [("Content-Type", "text/plain; charset=utf-8")], b"Internal Server Error"
            )
            outcome.status = 500
        elif not outcome.complete:
            log.warning(
                "Functions.%s: the answer ended after %d bytes without completing; the "
                "connection is cut",
                function.name,
                outcome.body_bytes,
            )
            handler.close_connection = True
            abort(handler.connection)
        if report:
            growth = peak_memory.peak() - marks["start"]
            log.info(
                "peak memory of Functions.%s: +%d bytes (reading its body: +%d bytes)",
                function.name,
                growth,
                marks.get("reading", 0),
            )
        ending = "" if outcome.complete else (" (client gone)" if outcome.client_gone else " (cut)")
        log.info(
            "%s %s -> %s (Functions.%s, %.0f ms, %d bytes%s)",
            handler.command,
            urlsplit(handler.path).path,
            outcome.status if outcome.status is not None else outcome.refused or "-",
            function.name,
            (time.perf_counter() - started) * 1000,
            outcome.body_bytes,
            ending,
        )


def _admin_key(split: Any, headers: dict[str, str]) -> str | None:
    lower = {k.lower(): v for k, v in headers.items()}
    return lower.get("x-functions-key") or dict(parse_qsl(split.query)).get("code")


def _run_now_of(host: HttpHost, method: str, split: Any, headers: dict[str, str]):
    """`POST /admin/functions/{name}` with the master key: run a non-HTTP function now (202),
    as the host's admin API does (functions-manually-run-non-http.md)."""
    if not host.keys.allows("admin", _admin_key(split, headers)):
        return 401, [], b""
    name = split.path[len(ADMIN_FUNCTIONS) :]
    runner = host.runners.get(name)
    if runner is None:
        return 404, [], b""
    if method != "POST":
        return 405, [("Allow", "POST")], b""
    runner()
    log.info("POST %s -> 202 (Functions.%s run now)", split.path, name)
    return 202, [], b""


def _make_handler(host: HttpHost) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "devhost"
        server: DevhostServer

        def log_message(self, format: str, *args: Any) -> None:
            log.debug(format, *args)

        def setup(self) -> None:
            super().setup()
            # Reads go through deadlines instead of the socket file's plain blocking reads.
            self.rfile.close()
            self._reader = DeadlineReader(self.connection)
            self.rfile = io.BufferedReader(self._reader)

        def handle_one_request(self) -> None:
            limits = self.server.limits
            self._reader.await_request(limits.keep_alive_timeout, limits.headers_timeout)
            self._answered = False
            super().handle_one_request()
            if self._reader.expired and self._reader.started and not self._answered:
                # Headers began but did not finish in time (the stdlib just drops the link).
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.settimeout(limits.write_timeout)
                    self.connection.sendall(_TIMEOUT_RESPONSE)

        def handle_expect_100(self) -> bool:
            # Refuse a body we would refuse anyway before the client sends it.
            try:
                body_framing(self.headers, self.server.limits.max_body_bytes)
            except FramingError as exc:
                self._refuse(exc.status)
                return False
            return super().handle_expect_100()

        def _refuse(self, status: int) -> None:
            """Answer a request whose body is not read, and close the connection."""
            self.close_connection = True
            with contextlib.suppress(OSError):
                self._send(status, [("Connection", "close")], b"")

        def _base_url(self) -> str:
            # Behind a proxy (or a tunnel) the app builds links from X-Forwarded-*.
            proto = self.headers.get("X-Forwarded-Proto", "http").split(",")[0].strip()
            hostname = self.headers.get("X-Forwarded-Host") or self.headers.get("Host")
            if not hostname:
                address, port = self.server.server_address[:2]
                hostname = f"{address}:{port}"
            return f"{proto}://{hostname.split(',')[0].strip()}"

        def _serve(self) -> None:
            limits = self.server.limits
            self._reader.await_body(limits.body_timeout)
            if host.worker is not None:
                self._serve_streamed()
                return
            try:
                body = read_body(self.rfile, self.headers, limits.max_body_bytes)
            except FramingError as exc:
                self._refuse(exc.status)
                return
            except TimeoutError:
                self._refuse(408)
                return
            except Truncated:
                self.close_connection = True  # the client is gone: nobody to answer
                return
            headers: dict[str, str] = {}
            for key, value in self.headers.items():
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
            status, out_headers, out_body = host.handle(
                self.command, self.path, headers, body, self._base_url()
            )
            self._send(status, out_headers, out_body)

        def _serve_streamed(self) -> None:
            """HTTP streams: route and key first, then the function reads the body from the
            socket as it goes and its answer is written as it comes."""
            limits = self.server.limits
            try:
                chunked, length = body_framing(self.headers, limits.max_body_bytes)
            except FramingError as exc:
                self._refuse(exc.status)
                return
            headers: dict[str, str] = {}
            for key, value in self.headers.items():
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
            resolved = host.resolve(self.command, self.path, headers)
            if not isinstance(resolved, Target):
                status, out_headers, out_body = resolved
                if chunked or length:
                    self.close_connection = True  # the body was not read
                    out_headers = [*out_headers, ("Connection", "close")]
                self._send(status, out_headers, out_body)
                return
            body = BodyPieces(self.rfile, chunked=chunked, length=length, cap=limits.max_body_bytes)
            host.serve_streamed(self, resolved, body, self._scope(resolved))
            if not body.done:
                self.close_connection = True  # what the function left unread is in the way

        def _scope(self, target: Target) -> dict[str, Any]:
            """The ASGI scope the worker's uvicorn would build for this request."""
            split = urlsplit(self.path)
            # uvicorn trusts X-Forwarded-Proto from the host on the same machine.
            proto = self.headers.get("X-Forwarded-Proto", "http").split(",")[0].strip().lower()
            return {
                "type": "http",
                "asgi": {"version": "3.0", "spec_version": "2.3"},
                "http_version": "1.1",
                "method": self.command,
                "scheme": proto if proto in ("http", "https") else "http",
                "path": unquote(split.path),
                "raw_path": split.path.encode("latin-1"),
                "query_string": split.query.encode("latin-1"),
                "root_path": "",
                "headers": [
                    (k.lower().encode("latin-1"), v.encode("latin-1"))
                    for k, v in self.headers.items()
                ],
                "client": self.client_address[:2],
                "server": self.server.server_address[:2],
                "state": {},
                # The route parameters the host matched (the worker syncs them in).
                "path_params": dict(target.route_params),
            }

        def start_answer(self, status: int, headers: list[tuple[str, str]]) -> None:
            """Status line and headers of a streamed answer (the body follows in writes)."""
            self._answered = True
            self.connection.settimeout(self.server.limits.write_timeout)
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.end_headers()

        def write_answer(self, data: bytes) -> None:
            self.connection.settimeout(self.server.limits.write_timeout)
            self.wfile.write(data)

        def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self._answered = True
            # A client that does not read its answer must not hold the thread for ever.
            self.connection.settimeout(self.server.limits.write_timeout)
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


@dataclass(frozen=True)
class ConnectionLimits:
    """How long a connection may take and how many may be open (defaults follow Kestrel, the
    Functions host's web server, and the host's 100 MB body limit)."""

    headers_timeout: float = 30.0
    body_timeout: float = 120.0
    keep_alive_timeout: float = 130.0
    write_timeout: float = 120.0
    max_connections: int = 256
    max_body_bytes: int = MAX_BODY_BYTES


class DevhostServer(ThreadingHTTPServer):
    """A threading HTTP server with a cap on open connections; request threads do not keep the
    process alive."""

    daemon_threads = True
    # Many parallel test clients: a deeper accept queue than the stdlib's 5.
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        limits: ConnectionLimits | None = None,
    ) -> None:
        self.limits = limits or ConnectionLimits()
        self._slots = threading.BoundedSemaphore(self.limits.max_connections)
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            log.warning("%d connections open: refused one with 503", self.limits.max_connections)
            with contextlib.suppress(OSError):
                request.settimeout(1)
                request.sendall(_BUSY_RESPONSE)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def make_server(
    host: HttpHost, port: int, address: str = "127.0.0.1", limits: ConnectionLimits | None = None
) -> DevhostServer:
    """Bind (port 0 picks a free one); call serve_forever() to run it."""
    return DevhostServer((address, port), _make_handler(host), limits)
