"""Request framing as HTTP/1.1 (RFC 9112) allows it: strict chunk sizes, Content-Length, the cap.

Graph sits behind a front end that refuses malformed framing with 400 before any route runs;
the sandbox must not be more lenient (a chunk size of -1 once reached `read(-1)` and read to
the end of the connection, past the body cap).
"""

from __future__ import annotations

import socket
import ssl
from urllib.parse import urlsplit

import pytest

from sandbox.server import MAX_BODY_BYTES


def _exchange(sandbox, raw: bytes) -> bytes:
    """Send `raw` on a fresh TLS connection (Connection: close) and read the answer to EOF."""
    parts = urlsplit(sandbox.url)
    context = ssl.create_default_context(cafile=sandbox.ca)
    with (
        socket.create_connection((parts.hostname, parts.port), timeout=10) as plain,
        context.wrap_socket(plain, server_hostname=parts.hostname) as tls,
    ):
        tls.sendall(raw)
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
        return answer


def _post(path: str, headers: str, body: bytes) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Connection: close\r\n\r\n"
    return head.encode() + body


@pytest.mark.parametrize("size", [b"-1", b"zz", b"0x3", b"+3", b"1_0", b" ", b"1" * 17], ids=repr)
def test_a_chunk_size_that_is_not_plain_hex_is_a_400(sandbox, size):
    raw = _post("/_sandbox/info", "Transfer-Encoding: chunked\r\n", size + b"\r\nabc\r\n0\r\n\r\n")
    answer = _exchange(sandbox, raw)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"Malformed request body" in answer


@pytest.mark.parametrize("length", ["-1", "+3", "3 3", "0x3"])
def test_a_content_length_that_is_not_digits_is_a_400(sandbox, length):
    raw = _post("/_sandbox/info", f"Content-Length: {length}\r\n", b"abc")
    assert _exchange(sandbox, raw).startswith(b"HTTP/1.1 400")


def test_content_length_and_chunked_together_are_refused(sandbox):
    raw = _post(
        "/_sandbox/info",
        "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
        b"3\r\nabc\r\n0\r\n\r\n",
    )
    assert _exchange(sandbox, raw).startswith(b"HTTP/1.1 400")


def test_a_chunk_declaring_more_than_the_cap_is_a_413_before_any_data(sandbox):
    raw = _post(
        "/_sandbox/info", "Transfer-Encoding: chunked\r\n", b"%x\r\n" % (MAX_BODY_BYTES + 1)
    )
    assert _exchange(sandbox, raw).startswith(b"HTTP/1.1 413")


def test_a_well_formed_chunked_body_still_arrives_whole(fresh_sandbox):
    """A chunked JSON body with a chunk extension and a trailer reaches the route intact."""
    body = b'{"path": "^/never/matches$", "action": "status", "status": 503}'
    chunked = b"5;ext=1\r\n%b\r\n%x\r\n%b\r\n0\r\nX-T: 1\r\n\r\n" % (
        body[:5],
        len(body) - 5,
        body[5:],
    )
    headers = "Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n"
    answer = _exchange(fresh_sandbox, _post("/_sandbox/faults", headers, chunked))
    assert answer.startswith(b"HTTP/1.1 201"), answer[:300]
    faults = fresh_sandbox.control("GET", "faults").json()["value"]
    assert [f["path"] for f in faults] == ["^/never/matches$"]
    fresh_sandbox.clear_faults()
