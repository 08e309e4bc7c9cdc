"""The devhost's HTTP server against slow, malformed and too many connections.

Timeouts and the connection cap are shown on an in-process server with short limits (real
sockets, no app: every request that gets through is a 404); body framing on the real devhost
process, whose echo function shows what reached the app.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost.http_host import DevhostServer, HttpHost
from devhost.keys import HostKeys
from tests.devhost.conftest import FIXTURE_KEY, serving

# Bounded waits: far longer than the short limits below, so only a server that never closes
# the connection makes a test fail.
PATIENCE = 10.0


@contextlib.contextmanager
def devhost_server(**limits: float) -> Iterator[DevhostServer]:
    """An in-process devhost HTTP server with no functions and the given limits."""
    with serving(HttpHost([], HostKeys("k", "m", "test"), Path(".")), **limits) as server:
        yield server


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=PATIENCE)
    sock.settimeout(PATIENCE)
    return sock


def response(sock: socket.socket, method: str = "GET") -> http.client.HTTPResponse:
    """Parse one response from `sock` (status, headers, body read)."""
    resp = http.client.HTTPResponse(sock, method=method)
    resp.begin()
    resp.read()
    return resp


def read_to_end(sock: socket.socket) -> bytes:
    """Everything until the server closes the connection (fails after PATIENCE seconds)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def request(port: int, raw: bytes) -> http.client.HTTPResponse:
    with connect(port) as sock:
        sock.sendall(raw)
        return response(sock, raw.split(b" ", 1)[0].decode())


# --- timeouts -------------------------------------------------------------------------------


def test_half_sent_headers_get_408_and_the_connection_closes():
    with devhost_server(headers_timeout=0.5) as server, connect(server.server_port) as sock:
        sock.sendall(b"GET /api/x HTTP/1.1\r\nHost: devhost\r\nX-Half: ")
        answer = read_to_end(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"Connection: close" in answer


def test_a_trickle_of_header_bytes_does_not_extend_the_headers_deadline():
    headers = b"GET /api/x HTTP/1.1\r\nHost: devhost\r\nX-Slow: " + b"a" * 200
    with devhost_server(headers_timeout=0.5) as server, connect(server.server_port) as sock:
        for byte in headers:  # one byte every 0.05 s: 10 s in all, 20 times the deadline
            try:
                sock.sendall(bytes([byte]))
                time.sleep(0.05)
                sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue  # nothing from the server yet
            except OSError:
                break  # reset: the server closed while bytes were in flight
            break  # an answer (the 408) or the end of the connection
        else:
            pytest.fail("the server waited for the whole trickle")


def test_a_body_that_stops_half_way_gets_408():
    with devhost_server(body_timeout=0.5) as server, connect(server.server_port) as sock:
        sock.sendall(b"POST /api/x HTTP/1.1\r\nHost: d\r\nContent-Length: 10\r\n\r\nabc")
        answer = read_to_end(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")


def test_an_idle_kept_alive_connection_is_closed_quietly_after_its_timeout():
    with devhost_server(keep_alive_timeout=0.5) as server, connect(server.server_port) as sock:
        sock.sendall(b"GET /api/x HTTP/1.1\r\nHost: devhost\r\n\r\n")
        assert response(sock).status == 404
        assert read_to_end(sock) == b""  # closed without a 408: no request had begun


def test_keep_alive_serves_several_requests_on_one_connection():
    with devhost_server() as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=PATIENCE)
        try:
            for _ in range(3):
                conn.request("POST", "/api/x", body=b"payload")
                resp = conn.getresponse()
                resp.read()
                assert resp.status == 404
            conn.request("GET", "/api/x")
            first_socket = conn.sock
            conn.getresponse().read()
            assert conn.sock is first_socket
        finally:
            conn.close()


# --- the connection cap ---------------------------------------------------------------------


def test_connections_over_the_cap_get_503_until_one_closes():
    with devhost_server(max_connections=2) as server:
        port = server.server_port
        holders = [connect(port), connect(port)]
        try:
            for holder in holders:  # both are served (each holds a slot while it waits)
                holder.sendall(b"GET /api/x HTTP/1.1\r\nHost: d\r\n\r\n")
                assert response(holder).status == 404
            with connect(port) as third:
                answer = read_to_end(third)
            assert answer.startswith(b"HTTP/1.1 503 ")
            assert b"Retry-After: 1" in answer
        finally:
            holders[0].close()

        def served() -> bool:
            with connect(port) as sock:
                try:
                    sock.sendall(b"GET /api/x HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
                    return read_to_end(sock).startswith(b"HTTP/1.1 404 ")
                except ConnectionResetError:
                    return False  # refused (503) before it read the request

        deadline = time.monotonic() + PATIENCE
        while not served():
            assert time.monotonic() < deadline, "the closed connection's slot never came back"
            time.sleep(0.05)
        holders[1].close()


# --- framing (in-process: small caps) -------------------------------------------------------


def test_chunked_bodies_over_the_cap_are_413_even_in_small_chunks():
    chunks = b"200\r\n" + b"a" * 0x200 + b"\r\n"
    with devhost_server(max_body_bytes=1000) as server:
        ok = request(
            server.server_port,
            b"POST /api/x HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n"
            + chunks
            + b"0\r\n\r\n",
        )
        over = request(
            server.server_port,
            b"POST /api/x HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks * 2,
        )
    assert ok.status == 404  # read in full, then routed
    assert over.status == 413
    assert over.getheader("Connection") == "close"


def test_expect_100_continue_is_refused_before_an_over_cap_body_is_sent():
    with devhost_server(max_body_bytes=1000) as server, connect(server.server_port) as sock:
        sock.sendall(
            b"POST /api/x HTTP/1.1\r\nHost: d\r\nContent-Length: 5000\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        answer = read_to_end(sock)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"100 Continue" not in answer


# --- framing on the real devhost ------------------------------------------------------------


def _post(fixture_host, head: bytes, body: bytes = b"") -> http.client.HTTPResponse:
    port = int(fixture_host.url.rsplit(":", 1)[1])
    raw = b"POST /api/echo HTTP/1.1\r\nHost: devhost\r\nx-functions-key: " + FIXTURE_KEY.encode()
    return request(port, raw + b"\r\n" + head + b"\r\n" + body)


CHUNKED = b"Transfer-Encoding: chunked\r\n"


@pytest.mark.parametrize(
    "head, body",
    [
        (CHUNKED, b"-1\r\nabc\r\n0\r\n\r\n"),  # negative size: once reached read(-1)
        (CHUNKED, b"zz\r\nabc\r\n0\r\n\r\n"),  # not hex
        (CHUNKED, b"0x3\r\nabc\r\n0\r\n\r\n"),  # a prefix int() would take
        (CHUNKED, b"+3\r\nabc\r\n0\r\n\r\n"),
        (CHUNKED, b"1_0\r\n" + b"a" * 16 + b"\r\n0\r\n\r\n"),
        (CHUNKED, b"\r\nabc\r\n0\r\n\r\n"),  # empty size
        (CHUNKED, b"3\r\nabcXY0\r\n\r\n"),  # no CRLF after the data
        (b"Transfer-Encoding: gzip\r\n", b"abc"),  # chunked must be the last coding
        (CHUNKED + b"Content-Length: 3\r\n", b"3\r\nabc\r\n0\r\n\r\n"),  # both framings
        (b"Content-Length: -1\r\n", b""),
        (b"Content-Length: +3\r\n", b"abc"),
        (b"Content-Length: 3\r\nContent-Length: 4\r\n", b"abcd"),
    ],
)
def test_malformed_framing_is_400_and_never_reaches_the_function(fixture_host, head, body):
    before = fixture_host.logs().count("Functions.echo")
    resp = _post(fixture_host, head, body)
    assert resp.status == 400
    assert resp.getheader("Connection") == "close"
    assert fixture_host.logs().count("Functions.echo") == before


def test_a_chunk_declaring_more_than_100_mb_is_413_before_any_data(fixture_host):
    resp = _post(fixture_host, CHUNKED, b"6400001\r\n")  # 100 MB + 1 byte, nothing sent
    assert resp.status == 413


def test_a_content_length_over_100_mb_is_413(fixture_host):
    assert _post(fixture_host, b"Content-Length: 104857601\r\n").status == 413


def test_a_well_formed_chunked_body_reaches_the_function_whole_and_keep_alive_goes_on(
    fixture_host,
):
    body = b"4;name=value\r\nWiki\r\n5 ;x\r\npedia\r\ne\r\n in\r\n\r\nchunks.\r\n"
    body += b"0\r\nX-Trailer: 1\r\n\r\n"
    head = b"POST /api/echo HTTP/1.1\r\nHost: d\r\nx-functions-key: " + FIXTURE_KEY.encode()
    with connect(int(fixture_host.url.rsplit(":", 1)[1])) as sock:
        sock.sendall(head + b"\r\n" + CHUNKED + b"\r\n" + body)
        first = http.client.HTTPResponse(sock, method="POST")
        first.begin()
        assert (first.status, first.read()) == (202, b"Wikipedia in\r\n\r\nchunks.")
        # The same connection serves the next request: the chunked body was read exactly.
        sock.sendall(head + b"\r\nContent-Length: 2\r\n\r\nok")
        second = http.client.HTTPResponse(sock, method="POST")
        second.begin()
        assert (second.status, second.read()) == (202, b"ok")
