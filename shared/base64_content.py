"""Base64 attachment content as a zero-copy slice of the request body, decoded only in chunks.

The request decoder keeps `contentBytes` as `msgspec.Raw` (a view of the body it came in), so a
90 MB body costs no second copy while the connection, signature, sender and sizes are checked.
Validation looks at length and alphabet only; bytes are decoded when they are uploaded, one
chunk at a time. Pure: no I/O. Raises `ValueError` for content that is not a JSON string.
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Iterator

import msgspec

_BASE64 = re.compile(rb"[A-Za-z0-9+/]*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def present(raw: msgspec.Raw) -> bool:
    """True when the field was given a value other than null."""
    return len(raw) > 0 and bytes(memoryview(raw)[:4]) != b"null"


def text(raw: msgspec.Raw) -> memoryview:
    """The base64 characters of a JSON string value, without copying them.

    A string with JSON escapes (some encoders write `\\/`) is unescaped into a copy; anything
    but a string raises ValueError.
    """
    view = memoryview(raw)
    if len(view) >= 2 and view[0] == 0x22 and view[-1] == 0x22 and b"\\" not in view:
        return view[1:-1]
    if len(view) >= 2 and view[0] == 0x22:
        value = json.loads(bytes(view))
        if isinstance(value, str):
            return memoryview(value.encode("ascii", "replace"))
    raise ValueError("must be a base64 string")


def problem(raw: msgspec.Raw) -> str | None:
    """Why the content is not usable base64 (length and alphabet), or None."""
    try:
        view = text(raw)
    except ValueError as exc:
        return str(exc)
    if len(view) % 4:
        return "is not valid base64 (its length is not a multiple of 4)"
    if not _BASE64.fullmatch(view):
        return "is not valid base64 (only A-Z a-z 0-9 + / and = padding)"
    return None


def decoded_size(raw: msgspec.Raw) -> int:
    """How many bytes the (valid) content decodes to, without decoding it."""
    view = text(raw)
    if not view:
        return 0
    padding = (view[-1] == 0x3D) + (len(view) > 1 and view[-2] == 0x3D)
    return len(view) // 4 * 3 - padding


def encoded_length(raw: msgspec.Raw) -> int:
    """How many base64 characters the content has."""
    return len(text(raw))


def as_str(raw: msgspec.Raw) -> str:
    """The base64 text (a copy: for small attachments only)."""
    return bytes(text(raw)).decode("ascii")


def decode_all(raw: msgspec.Raw) -> bytes:
    """All bytes (for small attachments only)."""
    return binascii.a2b_base64(text(raw))


def decode_chunks(raw: msgspec.Raw, chunk_bytes: int) -> Iterator[bytes]:
    """The decoded content in chunks of `chunk_bytes` (a multiple of 3), one at a time."""
    if chunk_bytes % 3:
        raise ValueError("chunk_bytes must be a multiple of 3")
    view = text(raw)
    step = chunk_bytes // 3 * 4
    for start in range(0, len(view), step):
        yield binascii.a2b_base64(view[start : start + step])
