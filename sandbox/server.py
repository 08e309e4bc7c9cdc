"""The sandbox's HTTPS server: threads, keep-alive, routing, and faults at the socket level."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import re
import socket
import ssl
import struct
import time
import uuid
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sandbox.context import SandboxContext
from sandbox.faults import fault_response
from sandbox.web import BadRequestBody, Headers, Request, Response

log = logging.getLogger("sandbox.server")

# Bodies above this are refused before they are read (Graph's own 4 MB cap is the Graph half's job).
MAX_BODY_BYTES = 256 * 1024 * 1024


def fault_exempt(path: str) -> bool:
    """Control paths and the web view pages never get faults (tests need them to stay reliable)."""
    return path.startswith("/_sandbox/") or path == "/" or path.startswith("/ui/")


class SandboxServer(ThreadingHTTPServer):
    """A threading HTTP server that does the TLS handshake in the request thread, not accept()."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], tls: ssl.SSLContext) -> None:
        super().__init__(address, RequestHandler)
        self.tls = tls
        self.ctx: SandboxContext | None = None

    @property
    def port(self) -> int:
        return self.server_address[1]

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(30)
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            # A client that does not trust our CA hangs up during the handshake: not our error.
            with contextlib.suppress(OSError):
                request.close()
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def shutdown_request(self, request: Any) -> None:
        # finish_request closed the TLS socket; the plain one was detached by wrap_socket.
        with contextlib.suppress(OSError):
            request.close()


_MAX_LINE = 4096  # a chunk-size line or a trailer field
_HEX_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")


class BodyTooLarge(Exception):
    """The request body is (or is declared) over MAX_BODY_BYTES (413)."""


class BadFraming(Exception):
    """A Content-Length or chunked framing that HTTP/1.1 (RFC 9112) does not allow (400)."""


def _chunk_size(line: bytes) -> int:
    """A chunk-size line's size: hex digits only (no sign, prefix or underscore), extensions
    after `;` ignored; BadFraming otherwise."""
    if len(line) > _MAX_LINE or not line.endswith(b"\n"):
        raise BadFraming("a chunk-size line is missing or too long")
    size = line.split(b";", 1)[0].strip()
    if not _HEX_SIZE.fullmatch(size):
        raise BadFraming(f"chunk size {size[:20]!r} is not hexadecimal")
    return int(size, 16)


def _content_length(value: str | None) -> int:
    """Content-Length as RFC 9110 8.6 allows it (digits only); BadFraming otherwise."""
    if value is None:
        return 0
    if not value.strip().isdigit() or not value.strip().isascii():
        raise BadFraming(f"Content-Length {value[:20]!r} is not a number")
    return int(value)


class RequestHandler(BaseHTTPRequestHandler):
    """One connection: parses requests, applies faults, runs the route, writes the response."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: with Nagle on, the body waits for the
    # client's delayed ACK (~40 ms per response with a body on keep-alive connections).
    disable_nagle_algorithm = True
    server_version = "sandbox"
    sys_version = ""
    server: SandboxServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log (GET /_sandbox/requests) is the record."""

    def _read_body(self) -> bytes:
        """The request body; BodyTooLarge over the cap, BadFraming for framing refused (400)."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            if self.headers.get("Content-Length") is not None:
                raise BadFraming("both Content-Length and chunked")  # a smuggling vector
            chunks, total = [], 0
            while size := _chunk_size(self.rfile.readline(_MAX_LINE + 1)):
                total += size
                if total > MAX_BODY_BYTES:
                    raise BodyTooLarge
                data = self.rfile.read(size)
                if len(data) < size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                    raise BadFraming("a chunk is shorter than its size")
                chunks.append(data)
            while self.rfile.readline(_MAX_LINE + 1) not in (b"\r\n", b"\n", b""):
                pass  # trailers are read and ignored
            return b"".join(chunks)
        length = _content_length(self.headers.get("Content-Length"))
        if length > MAX_BODY_BYTES:
            raise BodyTooLarge
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        ctx = self.server.ctx
        assert ctx is not None, "the server is not ready"
        started = time.monotonic()
        request_id = str(uuid.uuid4())
        headers = Headers(self.headers.items())
        method = self.command.upper()
        request = Request.from_target(
            method,
            self.path,
            headers,
            b"",
            base_url=ctx.base_url,
            client_ip=self.client_address[0],
        )
        entry: dict[str, Any] = {
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "method": method,
            "path": request.path,
            "status": None,
            "tenant": None,
            "app": None,
            "user": None,
            "fault": None,
            "requestId": request_id,
        }
        matched = ctx.router.match(method, request.path)
        streams = isinstance(matched, tuple) and matched[0].streams_body
        chunked_in = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        try:
            if streams and not chunked_in:
                length = _content_length(self.headers.get("Content-Length"))
                request.stream = BodyReader(self.rfile, length)
            else:
                request.body = self._read_body()
        except BodyTooLarge:
            self.close_connection = True
            self._finish_log(entry, request, started, 413)
            too_large = {"error": {"code": "RequestTooLarge", "message": "The body is too large."}}
            self._send(request, Response.json(too_large, 413), request_id)
            return
        except BadFraming as exc:
            # As IIS/HTTP.sys in front of Graph does: a malformed body framing is a plain 400.
            self.close_connection = True
            self._finish_log(entry, request, started, 400)
            bad = {"error": {"code": "BadRequest", "message": f"Malformed request body: {exc}"}}
            self._send(request, Response.json(bad, 400), request_id)
            return
        if streams and request.stream is None:
            request.stream = io.BytesIO(request.body)

        fault = None if fault_exempt(request.path) else ctx.faults.take(method, request.path)
        action = fault["action"] if fault else None
        entry["fault"] = action
        if action == "reset":
            self._finish_log(entry, request, started, None)
            self._abort(rst=True)
            return
        if action == "status":
            response = fault_response(
                request.path, fault, request_id, request.headers.get("client-request-id")
            )
            self._finish_log(entry, request, started, response.status)
            self._drain(request)
            self._send(request, response, request_id)
            return

        response = self._route(matched, request, fault)
        if action == "accept_then_drop":
            # The handler ran (the request took effect); the client never hears about it.
            self._finish_log(entry, request, started, response.status)
            _close_body(response.body)
            self._abort(rst=False)
            return
        stored = self._finish_log(entry, request, started, response.status)
        self._drain(request)
        cut_after = fault["afterBytes"] if action == "drop_mid_body" else None
        self._send(request, response, request_id, stored=stored, cut_after=cut_after)

    def _drain(self, request: Request) -> None:
        """Read what a streaming handler left unread, so the next request on the link parses."""
        if isinstance(request.stream, BodyReader) and request.stream.remaining:
            if request.stream.remaining > MAX_BODY_BYTES:
                self.close_connection = True
                return
            while request.stream.read(1 << 20):
                pass

    def _route(self, matched: Any, request: Request, fault: dict[str, Any] | None) -> Response:
        if matched is None:
            body = {"error": {"code": "NotFound", "message": f"No route for {request.path}"}}
            return Response.json(body, 404)
        if matched is False:
            body = {"error": {"code": "MethodNotAllowed", "message": "Method not allowed"}}
            return Response.json(body, 405)
        route, params = matched
        request.params = params
        if fault and fault["action"] == "delay":
            request.fault_delay = fault["delayMs"] / 1000.0
            if not route.consumes_delay:
                request.apply_fault_delay()
        try:
            return route.handler(request)
        except BadRequestBody as exc:
            body = {
                "error": {"code": "BadRequest", "message": f"The body is not valid JSON: {exc}"}
            }
            return Response.json(body, 400)
        except Exception:
            log.exception("handler failed: %s %s", request.method, request.path)
            body = {"error": {"code": "InternalServerError", "message": "Sandbox handler failed"}}
            return Response.json(body, 500)

    def _finish_log(
        self, entry: dict[str, Any], request: Request, started: float, status: int | None
    ) -> dict[str, Any] | None:
        entry["status"] = status
        for key in ("tenant", "app", "user"):
            entry[key] = request.log.get(key)
        entry["durationMs"] = round((time.monotonic() - started) * 1000, 1)
        if request.path != "/_sandbox/requests":  # reading the log is not worth logging
            return self.server.ctx.request_log.append(entry)
        return None

    def _abort(self, *, rst: bool) -> None:
        """Close the connection without a response; with rst, make the kernel send a TCP RST."""
        self.close_connection = True
        conn = self.connection
        with contextlib.suppress(OSError):
            if rst:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                conn.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            # Closing the raw fd skips the TLS close_notify: the peer sees the link just die.
            socket.socket(fileno=conn.detach()).close()

    def _send(
        self,
        request: Request,
        response: Response,
        request_id: str,
        *,
        stored: dict[str, Any] | None = None,
        cut_after: int | None = None,
    ) -> None:
        """Write the response. A streamed body's end is noted in its log entry (`stored`):
        `bodyEnd` "complete" or "aborted" (the client went away), with `bodyBytes`.
        `cut_after` (fault drop_mid_body): the connection dies after that many body bytes."""
        body = response.body
        self.send_response(response.status)
        sent = {k.lower() for k in response.headers}
        for key, value in response.headers.items():
            self.send_header(key, value)
        if "request-id" not in sent:
            self.send_header("request-id", request_id)
            self.send_header("x-ms-request-id", request_id)
        client_request_id = request.headers.get("client-request-id")
        if client_request_id and "client-request-id" not in sent:
            self.send_header("client-request-id", client_request_id)
        is_bytes = isinstance(body, bytes | bytearray)
        if is_bytes and "content-length" not in sent:
            self.send_header("Content-Length", str(len(body)))
        chunked = not is_bytes and "content-length" not in sent and request.method != "HEAD"
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if request.method == "HEAD" or response.status in (204, 304):
            _close_body(body)
            return
        if cut_after is not None:
            self._send_cut(body, chunked, cut_after)
            return
        if is_bytes:
            self.wfile.write(body)
            return
        log = self.server.ctx.request_log
        sent, end = 0, "aborted"
        log.update(stored, bodyEnd="open", bodyBytes=0)
        try:
            for chunk in body:
                if not chunk:
                    continue
                if chunked:
                    self.wfile.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                else:
                    self.wfile.write(chunk)
                sent += len(chunk)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
            end = "complete"
        finally:
            _close_body(body)
            log.update(stored, bodyEnd=end, bodyBytes=sent)

    def _send_cut(self, body: bytes | Iterable[bytes], chunked: bool, limit: int) -> None:
        """Send at most `limit` bytes of the body, then let the connection die (no RST: the
        client reads what came, then the end of the stream)."""
        pieces = [body] if isinstance(body, bytes | bytearray) else body
        sent = 0
        try:
            for chunk in pieces:
                part = bytes(chunk[: max(limit - sent, 0)])
                if part:
                    self.wfile.write(b"%x\r\n%b\r\n" % (len(part), part) if chunked else part)
                    sent += len(part)
                if sent >= limit:
                    break
        finally:
            _close_body(body)
            self._abort(rst=False)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch


class BodyReader(io.RawIOBase):
    """A request body of known length, read on demand by a streaming handler."""

    def __init__(self, rfile: Any, length: int) -> None:
        self._rfile = rfile
        self.remaining = length

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        size = self.remaining if size is None or size < 0 else min(size, self.remaining)
        data = self._rfile.read(size)
        if not data:
            raise ConnectionError("the client closed the connection mid-body")
        self.remaining -= len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _close_body(body: bytes | Iterable[bytes]) -> None:
    close = getattr(body, "close", None)
    if callable(close):
        close()
