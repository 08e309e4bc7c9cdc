"""Request body framing, read strictly: chunk sizes, the cap, Content-Length, coding lists."""

from __future__ import annotations

import io
from email.message import Message

import pytest

from devhost.http_framing import (
    BodyTooLarge,
    FramingError,
    Truncated,
    UnsupportedCoding,
    read_body,
    read_chunked,
)


def headers(*pairs: tuple[str, str]) -> Message:
    message = Message()
    for name, value in pairs:
        message[name] = value
    return message


def test_chunks_with_extensions_and_trailers_are_joined():
    raw = b"4;a=b\r\nWiki\r\n5 ;x\r\npedia\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT"
    stream = io.BytesIO(raw)
    assert read_chunked(stream, 100) == b"Wikipedia"
    assert stream.read() == b"NEXT"  # nothing of the next request was consumed


@pytest.mark.parametrize(
    "raw",
    [
        b"-1\r\nabc\r\n0\r\n\r\n",
        b"0x3\r\nabc\r\n",
        b"+3\r\nabc\r\n",
        b"\r\n",
        b"g\r\n",
        b"3\r\nabcd\r\n",
    ],
)
def test_malformed_chunks_are_framing_errors(raw):
    with pytest.raises(FramingError) as caught:
        read_chunked(io.BytesIO(raw), 100)
    assert caught.value.status == 400


def test_the_cap_applies_to_the_sum_of_chunks_before_their_data_is_read():
    with pytest.raises(BodyTooLarge) as caught:
        read_chunked(io.BytesIO(b"30\r\n" + b"a" * 48 + b"\r\n30\r\n"), 80)
    assert caught.value.status == 413
    with pytest.raises(BodyTooLarge):
        read_chunked(io.BytesIO(b"ffffffffffffffffffff\r\n"), 100 * 1024 * 1024)


def test_a_body_cut_short_is_truncated():
    for raw in (b"5\r\nab", b"5\r\nabcde", b"5\r\nabcde\r\n0\r\n", b"5"):
        with pytest.raises(Truncated):
            read_chunked(io.BytesIO(raw), 100)
    with pytest.raises(Truncated):
        read_body(io.BytesIO(b"ab"), headers(("Content-Length", "5")), 100)


@pytest.mark.parametrize(
    "pairs, error",
    [
        ((("Content-Length", "-1"),), FramingError),
        ((("Content-Length", "1_0"),), FramingError),
        ((("Content-Length", "٣"),), FramingError),  # a digit, but not an ASCII one
        ((("Content-Length", "3"), ("Content-Length", "4")), FramingError),
        ((("Content-Length", "9" * 5000),), BodyTooLarge),
        ((("Content-Length", "101"),), BodyTooLarge),
        ((("Transfer-Encoding", "chunked"), ("Content-Length", "3")), FramingError),
        ((("Transfer-Encoding", "chunked, gzip"),), FramingError),
        ((("Transfer-Encoding", "gzip, chunked"),), UnsupportedCoding),
    ],
)
def test_refused_framing_headers(pairs, error):
    with pytest.raises(error):
        read_body(io.BytesIO(b"abc"), headers(*pairs), 100)


def test_same_content_length_twice_and_no_length_are_fine():
    same = headers(("Content-Length", "3"), ("Content-Length", "3"))
    assert read_body(io.BytesIO(b"abcdef"), same, 100) == b"abc"
    assert read_body(io.BytesIO(b"abc"), headers(), 100) == b""
