"""The devhost's HTTP-streams path, as the Python worker runs an app that imported the FastAPI
web extension: the body comes off the socket as the function reads it, the answer goes out as it
is produced (chunked without a Content-Length), sync functions run in a pool, and the host's
limits, keys and routes hold as on the classic path.

In-process servers with short limits and functions defined here (real sockets, raw HTTP).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.client
import inspect
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from azurefunctions.extensions.http.fastapi import (
    JSONResponse,
    Request,
    Response,
    StreamingResponse,
)

from devhost.app_index import IndexedFunction
from devhost.http_host import DevhostServer, HttpHost
from devhost.keys import HostKeys
from devhost.routes import compile_route
from tests.devhost.conftest import serving

PATIENCE = 10.0
KEY = "streams-key"
LOOP_THREAD = "devhost-event-loop"
left = threading.Event()  # set when `endless` learns that its client went away


async def echo(req: Request) -> Response:
    digest, pieces, size = hashlib.sha256(), 0, 0
    async for piece in req.stream():
        if piece:
            pieces, size = pieces + 1, size + len(piece)
            digest.update(piece)
    return JSONResponse({"bytes": size, "pieces": pieces, "sha256": digest.hexdigest()})


async def chunked(req: Request) -> Response:
    count = int(req.query_params["n"])
    return StreamingResponse(iter([b"x" * 1000] * count), media_type="text/plain")


async def sized(req: Request) -> Response:
    async def pieces():
        for _ in range(3):
            yield b"y" * 1000

    return StreamingResponse(pieces(), headers={"Content-Length": "3000"})


async def broken(req: Request) -> Response:
    def pieces():
        yield b"z" * 1000
        raise RuntimeError("the source broke")

    headers = {"Content-Length": "5000"} if req.query_params.get("sized") else None
    return StreamingResponse(pieces(), headers=headers)


def sync_info(req: Request) -> Response:
    return JSONResponse(
        {
            "name": req.path_params.get("name"),
            "first": req.query_params.get("q"),
            "url": str(req.url),
            "thread": threading.current_thread().name,
        }
    )


async def async_info(req: Request) -> Response:
    return JSONResponse({"thread": threading.current_thread().name})


async def boom(req: Request) -> Response:
    raise RuntimeError("internal-detail-do-not-leak")


async def plain(req: Request) -> dict:
    return {"answer": 42}


class Endless(StreamingResponse):
    """Pieces for ever; `left` is set when the answer ends, as the product's DownloadResponse
    learns it (its __call__ returns or raises). A generator's own `finally` would wait for the
    generator to be collected: the send that fails is not inside it."""

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            left.set()


async def endless(req: Request) -> Response:
    left.clear()

    async def pieces():
        while True:
            yield b"e" * 65536
            await asyncio.sleep(0)

    return Endless(pieces())


def http_function(func: Callable, route: str, methods=("GET",), auth="function"):
    return IndexedFunction(
        name=func.__name__,
        func=func,
        trigger_type="httpTrigger",
        trigger_arg="req",
        route=compile_route(route),
        methods=tuple(methods),
        auth_level=auth,
        is_async=inspect.iscoroutinefunction(func),
    )


FUNCTIONS = [
    http_function(echo, "echo", ("POST",)),
    http_function(chunked, "chunked"),
    http_function(sized, "sized"),
    http_function(broken, "broken"),
    http_function(sync_info, "info/{name}"),
    http_function(async_info, "async-info"),
    http_function(boom, "boom"),
    http_function(plain, "plain"),
    http_function(endless, "endless"),
]


@contextlib.contextmanager
def streams_server(**limits: float) -> Iterator[DevhostServer]:
    host = HttpHost(FUNCTIONS, HostKeys(KEY, "master", "test"), Path("."), streams=True)
    try:
        with serving(host, **limits) as server:
            yield server
    finally:
        assert host.worker is not None
        host.worker.stop()


@pytest.fixture(scope="module")
def server() -> Iterator[DevhostServer]:
    with streams_server() as running:
        yield running


def connection(server: DevhostServer) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=PATIENCE)


def call(server, method, path, body=None, headers=None) -> tuple[http.client.HTTPResponse, bytes]:
    conn = connection(server)
    try:
        conn.request(method, path, body=body, headers={"x-functions-key": KEY, **(headers or {})})
        resp = conn.getresponse()
        return resp, resp.read()
    finally:
        conn.close()


def raw_exchange(server: DevhostServer, raw: bytes) -> bytes:
    """Send `raw`, read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", server.server_port), timeout=PATIENCE) as sock:
        sock.sendall(raw)
        data = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                data += chunk
        return data


# --- the body, as it arrives ---------------------------------------------------------------


def test_a_big_body_reaches_the_function_in_pieces_whole_and_keep_alive_goes_on(server):
    body = bytes(range(256)) * 12_000  # 3 MB
    conn = connection(server)
    try:
        conn.request("POST", "/api/echo", body=body, headers={"x-functions-key": KEY})
        first = conn.getresponse()
        seen = json.loads(first.read())
        sock = conn.sock
        chunks = b"4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\nX-Trailer: 1\r\n\r\n"
        conn.putrequest("POST", "/api/echo")
        conn.putheader("x-functions-key", KEY)
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders(chunks)
        second = json.loads(conn.getresponse().read())
        assert conn.sock is sock  # the same connection: both bodies were read exactly
    finally:
        conn.close()
    assert first.status == 200
    assert seen["bytes"] == len(body) and seen["sha256"] == hashlib.sha256(body).hexdigest()
    assert seen["pieces"] > 1  # handed over as it arrived, not read whole first
    assert second == {"bytes": 9, "pieces": 2, "sha256": hashlib.sha256(b"Wikipedia").hexdigest()}


def test_a_slow_body_is_408_even_while_the_function_is_reading_it():
    with streams_server(body_timeout=0.5) as server:
        answer = raw_exchange(
            server,
            b"POST /api/echo HTTP/1.1\r\nHost: d\r\nx-functions-key: " + KEY.encode() + b"\r\n"
            b"Content-Length: 10\r\n\r\nabc",
        )
    assert answer.startswith(b"HTTP/1.1 408 ")


def test_body_limits_hold_before_and_while_the_function_reads():
    head = b"POST /api/echo HTTP/1.1\r\nHost: d\r\nx-functions-key: " + KEY.encode() + b"\r\n"
    with streams_server(max_body_bytes=1000) as server:
        declared = raw_exchange(server, head + b"Content-Length: 1001\r\n\r\n")
        chunk = b"200\r\n" + b"a" * 0x200 + b"\r\n"
        grown = raw_exchange(server, head + b"Transfer-Encoding: chunked\r\n\r\n" + chunk * 3)
        malformed = raw_exchange(
            server, head + b"Transfer-Encoding: chunked\r\n\r\n" + chunk + b"zz\r\n"
        )
    assert declared.startswith(b"HTTP/1.1 413 ")  # refused before the function is called
    assert grown.startswith(b"HTTP/1.1 413 ")  # the sum passed the cap while being read
    assert malformed.startswith(b"HTTP/1.1 400 ")
    for answer in (declared, grown, malformed):
        assert b"Connection: close" in answer


def test_without_the_key_it_is_401_before_the_body_is_read_and_the_connection_closes(server):
    started = time.monotonic()
    answer = raw_exchange(
        server, b"POST /api/echo HTTP/1.1\r\nHost: d\r\nContent-Length: 50000000\r\n\r\npartial"
    )
    assert answer.startswith(b"HTTP/1.1 401 ")
    assert b"Connection: close" in answer
    assert time.monotonic() - started < PATIENCE  # answered, not waiting for 50 MB


def test_routes_and_methods_are_the_hosts(server):
    assert call(server, "GET", "/api/nowhere")[0].status == 404
    resp, _ = call(server, "DELETE", "/api/echo")
    assert resp.status == 405 and resp.getheader("Allow") == "POST"


# --- the answer, as it is produced -----------------------------------------------------------


def test_an_answer_without_a_length_is_chunked_and_one_with_a_length_is_not(server):
    resp, body = call(server, "GET", "/api/chunked?n=5")
    assert resp.getheader("Transfer-Encoding") == "chunked"
    assert resp.getheader("Content-Length") is None
    assert body == b"x" * 5000
    resp, body = call(server, "GET", "/api/sized")
    assert resp.getheader("Content-Length") == "3000"
    assert resp.getheader("Transfer-Encoding") is None
    assert body == b"y" * 3000


@pytest.mark.parametrize("query", ["", "?sized=1"])
def test_a_source_failing_mid_answer_cuts_the_connection(server, query):
    conn = connection(server)
    try:
        conn.request("GET", f"/api/broken{query}", headers={"x-functions-key": KEY})
        resp = conn.getresponse()
        assert resp.status == 200  # the headers went out before the source failed
        with pytest.raises(http.client.IncompleteRead) as caught:
            resp.read()
    finally:
        conn.close()
    assert caught.value.partial == b"z" * 1000  # what came, and no end of the body


def test_a_client_that_leaves_is_told_to_the_function(server):
    with socket.create_connection(("127.0.0.1", server.server_port), timeout=PATIENCE) as sock:
        sock.sendall(b"GET /api/endless HTTP/1.1\r\nHost: d\r\nx-functions-key: " + KEY.encode())
        sock.sendall(b"\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
    assert left.wait(PATIENCE), "the function kept streaming to a client that had gone"


def test_a_failure_before_the_answer_is_a_plain_500_without_detail(server):
    resp, body = call(server, "GET", "/api/boom")
    assert resp.status == 500
    assert b"internal-detail" not in body and b"Traceback" not in body


def test_what_is_not_a_response_is_answered_as_json(server):
    resp, body = call(server, "GET", "/api/plain")
    assert resp.status == 200 and json.loads(body) == {"answer": 42}


def test_sync_functions_run_in_the_pool_async_ones_on_the_loop(server):
    resp, body = call(server, "GET", "/api/info/anna?q=1&q=2")
    info = json.loads(body)
    assert resp.status == 200
    assert info["name"] == "anna"  # the route parameters the host matched
    assert info["url"] == f"http://127.0.0.1:{server.server_port}/api/info/anna?q=1&q=2"
    assert info["thread"].startswith("devhost-sync")
    _, body = call(server, "GET", "/api/async-info")
    assert json.loads(body)["thread"] == LOOP_THREAD
