"""HTTP/1.1 request bodies read strictly (RFC 9112): Content-Length or chunked, a size cap, and
deadlines for headers and body that a slow trickle of bytes cannot stretch."""

from __future__ import annotations

import io
import re
import socket
import time
from email.message import Message
from typing import Any, BinaryIO

_DIGITS = re.compile(r"[0-9]+")
_HEX_SIZE = re.compile(rb"[0-9A-Fa-f]{1,64}")
_MAX_LINE = 4096  # a chunk-size line or a trailer field
_MAX_TRAILER_LINES = 100
_LINE_ENDS = (b"\r\n", b"\n")  # RFC 9112 2.2 allows a bare LF


class FramingError(Exception):
    """A body the devhost refuses to read; `status` is the answer."""

    status = 400


class BodyTooLarge(FramingError):
    """The body is (or is declared) over the cap."""

    status = 413


class UnsupportedCoding(FramingError):
    """A transfer coding other than chunked (gzip, ...)."""

    status = 501


class Truncated(Exception):
    """The client closed the connection before the whole body arrived (nobody to answer)."""


class DeadlineReader(io.RawIOBase):
    """A connection's socket, read against a deadline (wrap it in io.BufferedReader)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._deadline: float | None = None
        self._after_first_byte: float | None = None
        self.started = False
        self.expired = False

    def readable(self) -> bool:
        return True

    def await_request(self, idle: float, headers: float) -> None:
        """The next request may take `idle` seconds to begin, then `headers` for its headers."""
        self._deadline = time.monotonic() + idle
        self._after_first_byte = headers
        self.started = self.expired = False

    def await_body(self, timeout: float) -> None:
        """The body must arrive within `timeout` seconds from now."""
        self._deadline = time.monotonic() + timeout
        self._after_first_byte = None

    def readinto(self, buffer: Any) -> int:
        """recv_into with the time left; TimeoutError (and `expired`) once it is up."""
        if self._deadline is not None:
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                self.expired = True
                raise TimeoutError("the request did not arrive in time")
            self._sock.settimeout(remaining)
        try:
            count = self._sock.recv_into(buffer)
        except TimeoutError:
            self.expired = True
            raise
        if count:
            self.started = True
            if self._after_first_byte is not None:
                self._deadline = time.monotonic() + self._after_first_byte
                self._after_first_byte = None
        return count


def body_framing(headers: Message, cap: int) -> tuple[bool, int]:
    """(chunked, declared length) of a request; raises FramingError for framing refused."""
    chunked = _is_chunked(headers.get_all("Transfer-Encoding") or [])
    length = _content_length(headers.get_all("Content-Length") or [])
    if chunked and length is not None:
        raise FramingError("both Content-Length and chunked")  # a request smuggling vector
    if length is not None and length > cap:
        raise BodyTooLarge(f"Content-Length {length}")
    return chunked, length or 0


def read_body(rfile: BinaryIO, headers: Message, cap: int) -> bytes:
    """The whole body; FramingError, Truncated, or TimeoutError from the reader's deadline."""
    chunked, length = body_framing(headers, cap)
    if chunked:
        return read_chunked(rfile, cap)
    body = rfile.read(length) if length else b""
    if len(body) < length:
        raise Truncated
    return body


def read_chunked(rfile: BinaryIO, cap: int) -> bytes:
    """A chunked body (RFC 9112 7.1), joined; see BodyPieces."""
    pieces = BodyPieces(rfile, chunked=True, length=0, cap=cap, piece_bytes=1 << 30)
    return b"".join(iter(pieces.read, b""))


class BodyPieces:
    """A request body read piece by piece as the app asks for it (HTTP streams).

    Content-Length or chunked (RFC 9112 7.1: hex sizes only, CRLF after each chunk, trailers
    read and dropped), `cap` on the sum checked against each declared size before its data is
    read, at most `piece_bytes` per read(). read() answers b"" once the body has ended; raises
    FramingError, Truncated, or TimeoutError from the reader's deadline.
    """

    def __init__(
        self, rfile: BinaryIO, *, chunked: bool, length: int, cap: int, piece_bytes: int = 65536
    ) -> None:
        self._rfile = rfile
        self._chunked = chunked
        self._left = 0 if chunked else length  # of the body, or of the current chunk
        self._cap = cap
        self._piece = piece_bytes
        self.total = 0
        self.done = not chunked and length == 0

    def read(self) -> bytes:
        if self.done:
            return b""
        if self._chunked and self._left == 0 and not self._next_chunk():
            self.done = True
            return b""
        data = self._rfile.read(min(self._piece, self._left))
        if not data:
            raise Truncated
        self._left -= len(data)
        self.total += len(data)
        if self._left == 0:
            if self._chunked:
                if _line(self._rfile) not in _LINE_ENDS:
                    raise FramingError("chunk data longer than its size")
            else:
                self.done = True
        return data

    def _next_chunk(self) -> bool:
        """Read the next chunk-size line; False after the last chunk and its trailer fields."""
        size = _chunk_size(_line(self._rfile))
        if size == 0:
            for _ in range(_MAX_TRAILER_LINES):
                if _line(self._rfile) in _LINE_ENDS:
                    return False
            raise FramingError("too many trailer fields")
        if self.total + size > self._cap:
            raise BodyTooLarge(f"chunked body over {self._cap} bytes")
        self._left = size
        return True


def _content_length(values: list[str]) -> int | None:
    if not values:
        return None
    found = {v.strip() for value in values for v in value.split(",")}
    if len(found) != 1 or not _DIGITS.fullmatch(length := found.pop()):
        raise FramingError("Content-Length")  # "-1", "+5", "1_0", two different lengths ...
    if len(length) > 18:
        raise BodyTooLarge("Content-Length")  # far over any cap; int() refuses huge strings
    return int(length)


def _is_chunked(values: list[str]) -> bool:
    if not values:
        return False
    codings = [c.strip().lower() for value in values for c in value.split(",") if c.strip()]
    if not codings or codings[-1] != "chunked":
        raise FramingError("Transfer-Encoding")  # RFC 9112 6.3: chunked must come last
    if len(codings) > 1:
        raise UnsupportedCoding(", ".join(codings))
    return True


def _chunk_size(line: bytes) -> int:
    """The size in a chunk-size line (`1a;name=value`); FramingError unless it is plain hex."""
    size = line.rstrip(b"\r\n").split(b";", 1)[0].rstrip(b" \t")
    if not _HEX_SIZE.fullmatch(size):
        raise FramingError("chunk size")
    return int(size, 16)


def _line(rfile: BinaryIO) -> bytes:
    line = rfile.readline(_MAX_LINE + 1)
    if len(line) > _MAX_LINE:
        raise FramingError("line too long")
    if not line.endswith(b"\n"):
        raise Truncated
    return line
