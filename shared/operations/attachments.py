"""Attachment bytes from base64 or an https URL, streamed in bounded chunks, and their upload.

Small attachments travel inline on the message; bigger ones (UPLOAD_THRESHOLD) go through a
Graph upload session in ordered chunks read straight from the source, so memory stays at about
one chunk whatever the file size. URLs are fetched with the peer-checking session unless the
connection allows private hosts, byte for byte (no content decoding). Error messages never carry
a URL's query (SAS tokens) nor chain the requests error that would. Raises `ValidationFailed`
(bad URL, source answered 4xx), `PayloadTooLarge` (over ATTACHMENT_MAX_BYTES),
`AttachmentFetchFailed` (network, 5xx).
"""

from __future__ import annotations

import base64
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING
from urllib.parse import quote

import requests

from shared import base64_content
from shared.errors import AttachmentFetchFailed, Detail, PayloadTooLarge, ValidationFailed
from shared.graph.client import mailbox_path
from shared.models import Attachment
from shared.urlsafety import (
    check_attachment_url,
    forbidden_peer_in,
    guarded_session,
    redact_url,
)

if TYPE_CHECKING:
    from shared.graph.client import GraphClient
    from shared.identity.connections import Connection

log = logging.getLogger(__name__)

# Graph: "To attach a file that's smaller than 3 MB, do a POST operation on the attachments
# navigation property ... if the file size is between 3 MB and 150 MB, create an upload
# session" (attachment-createuploadsession), and a request is at most 4 MB. A POSTed file
# travels as base64 (4 bytes per 3) inside JSON, so the base64 plus the JSON around it must stay
# under 4 MB, read as 4,000,000 bytes (the stricter reading): (4,000,000 - 16 KiB of JSON for
# name, content type and id) * 3 / 4 = 2,987,712 bytes, which is also under 3 MB.
GRAPH_REQUEST_CAP = 4_000_000
ATTACHMENT_JSON_RESERVE = 16 * 1024
UPLOAD_THRESHOLD = min(3_000_000, (GRAPH_REQUEST_CAP - ATTACHMENT_JSON_RESERVE) * 3 // 4)
# Graph refuses an upload session below its minimum (3 MiB where 3 MB means that); a file
# between UPLOAD_THRESHOLD and that minimum is then POSTed after all (its base64 fits 4 MiB).
SESSION_TOO_SMALL = "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize"
CHUNK_BYTES = 12 * 320 * 1024  # 3.75 MiB
FETCH_TIMEOUT = (10.0, 30.0)
READ_BYTES = 256 * 1024
# A source that trickles (one byte every few seconds never trips the read timeout) must not
# hold a request for minutes: time spent waiting for its bytes is capped overall, and after a
# grace period it must have kept up an average rate.
DOWNLOAD_DEADLINE_SECONDS = 120.0
MIN_BYTES_PER_SECOND = 32 * 1024
RATE_GRACE_SECONDS = 10.0
# Bytes exactly as stored: a decoded (gzip) body would not match Content-Length, and the
# attachment must be the file itself.
IDENTITY = {"Accept-Encoding": "identity"}


def _read_errors() -> tuple[type[BaseException], ...]:
    """What reading a raw response can raise (requests, urllib3, sockets)."""
    import urllib3.exceptions

    return (requests.RequestException, urllib3.exceptions.HTTPError, OSError)


@dataclass
class Source:
    """One attachment's metadata and a way to read its bytes once, in chunks."""

    spec: Attachment
    size: int
    chunks: Callable[[], Iterator[bytes]]
    close: Callable[[], None] = lambda: None

    def read_all(self) -> bytes:
        return b"".join(self.chunks())


def _rechunk(pieces: Iterator[bytes], size: int) -> Iterator[bytes]:
    """Exactly `size`-byte chunks (the last may be shorter) from pieces of any length."""
    buf = bytearray()
    for piece in pieces:
        buf += piece
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)


def from_base64(spec: Attachment) -> Source:
    """The attachment's base64 content, decoded one chunk at a time as it is read."""
    return Source(
        spec,
        base64_content.decoded_size(spec.content_bytes),
        lambda: base64_content.decode_chunks(spec.content_bytes, CHUNK_BYTES),
    )


def from_url(
    spec: Attachment,
    *,
    field: str,
    connection: Connection,
    session: requests.Session,
    max_bytes: int,
    resolve: Callable[[str, int], list[str]] | None = None,
    guarded: requests.Session | None = None,
) -> Source:
    """Open the URL (after the safety checks) and return a streaming Source.

    `session` serves connections that allow private hosts; `guarded` (peer-checked, see
    shared.urlsafety.guarded_session; a new one when None) every other connection.
    """
    url = spec.url or ""
    allow_private = connection.allow_private_attachment_hosts
    check_attachment_url(
        url,
        field=field,
        allowed_hosts=connection.attachment_url_hosts,
        allow_private=allow_private,
        resolve=resolve,
    )
    # `session` serves connections that allow private hosts (the sandbox); every other URL
    # goes through the session that checks the address each connection really reached.
    http = session if allow_private else (guarded or guarded_session())
    try:
        # No redirects: a redirect could lead past the host allowlist and the address checks.
        resp = http.get(
            url, stream=True, timeout=FETCH_TIMEOUT, allow_redirects=False, headers=IDENTITY
        )
    except requests.RequestException as exc:
        if forbidden_peer_in(exc):
            raise ValidationFailed(
                "An attachment URL is not allowed.",
                details=[Detail(field, "the host resolved to an internal address")],
            ) from None
        # `from None`: the requests error's text holds the whole URL, SAS query included.
        log.warning("attachment fetch of %s failed: %s", redact_url(url), type(exc).__name__)
        raise AttachmentFetchFailed(
            f"{field}: could not fetch the URL ({type(exc).__name__})."
        ) from None
    if resp.status_code != 200:
        resp.close()
        if 300 <= resp.status_code < 500:
            raise ValidationFailed(
                "An attachment URL could not be fetched.",
                details=[Detail(field, f"the server answered HTTP {resp.status_code}")],
            )
        raise AttachmentFetchFailed(f"{field}: the server answered HTTP {resp.status_code}.")
    length = resp.headers.get("Content-Length")
    if length is not None and length.isdigit():
        size = int(length)
        if size > max_bytes:
            resp.close()
            raise _too_large(field, max_bytes)

        def stream() -> Iterator[bytes]:
            got = 0
            try:
                for chunk in _rechunk(_raw(resp, field), CHUNK_BYTES):
                    got += len(chunk)
                    if got > size:
                        raise AttachmentFetchFailed(f"{field}: more bytes than Content-Length.")
                    yield chunk
            except _read_errors() as exc:
                raise AttachmentFetchFailed(
                    f"{field}: the download broke off ({type(exc).__name__})."
                ) from None
            finally:
                resp.close()
            if got != size:
                raise AttachmentFetchFailed(f"{field}: fewer bytes than Content-Length.")

        return Source(spec, size, stream, resp.close)
    # No length: spool to a temp file (memory holds one chunk, the disk the rest) to learn it.
    spool = _spool(resp, field, max_bytes)
    size = spool.seek(0, 2)
    spool.seek(0)
    return Source(spec, size, lambda: iter(lambda: spool.read(CHUNK_BYTES), b""), spool.close)


def _raw(
    resp: requests.Response, field: str, clock: Callable[[], float] = time.monotonic
) -> Iterator[bytes]:
    """The body's bytes as sent (Content-Encoding not undone), in pieces as they arrive.

    Raises AttachmentFetchFailed when waiting for the source takes over the deadline, or when
    after the grace period its average rate is below the minimum. Only time spent waiting for
    the source counts (not our uploads between reads).
    """
    waited, got = 0.0, 0
    while True:
        started = clock()
        # read1: whatever one receive brings (read() would wait for READ_BYTES in full).
        piece = resp.raw.read1(READ_BYTES, decode_content=False)
        waited += clock() - started
        if not piece:
            return
        got += len(piece)
        if waited > DOWNLOAD_DEADLINE_SECONDS:
            raise AttachmentFetchFailed(
                f"{field}: the download took longer than {DOWNLOAD_DEADLINE_SECONDS:.0f} s."
            )
        if waited > RATE_GRACE_SECONDS and got < MIN_BYTES_PER_SECOND * waited:
            raise AttachmentFetchFailed(
                f"{field}: the source sends slower than {MIN_BYTES_PER_SECOND} bytes/s."
            )
        yield piece


def _spool(resp: requests.Response, field: str, max_bytes: int) -> IO[bytes]:
    spool = tempfile.SpooledTemporaryFile(max_size=CHUNK_BYTES)  # noqa: SIM115 - returned
    total = 0
    try:
        for piece in _raw(resp, field):
            total += len(piece)
            if total > max_bytes:
                spool.close()
                raise _too_large(field, max_bytes)
            spool.write(piece)
    except AttachmentFetchFailed:
        spool.close()
        raise
    except _read_errors() as exc:
        spool.close()
        raise AttachmentFetchFailed(
            f"{field}: the download broke off ({type(exc).__name__})."
        ) from None
    finally:
        resp.close()
    return spool


def _too_large(field: str, max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"{field}: the attachment is larger than the limit of {max_bytes} bytes.",
        details=[Detail(field, f"larger than {max_bytes} bytes")],
    )


def file_attachment(spec: Attachment, data: bytes | None = None) -> dict:
    """A Graph fileAttachment object for bytes we hold (default: the request's base64, as is)."""
    encoded = (
        base64.b64encode(data).decode("ascii")
        if data is not None
        else base64_content.as_str(spec.content_bytes)
    )
    item: dict = {
        "@odata.type": "#microsoft.graph.fileAttachment",
        "name": spec.name,
        "contentType": spec.content_type or "application/octet-stream",
        "contentBytes": encoded,
        "isInline": spec.is_inline,
    }
    if spec.content_id:
        item["contentId"] = spec.content_id
    return item


def add_small(graph: GraphClient, mailbox: str, message_id: str, source: Source) -> None:
    """POST one attachment up to UPLOAD_THRESHOLD to an existing message."""
    path = f"{mailbox_path(mailbox)}/messages/{quote(message_id, safe='')}/attachments"
    graph.post(path, json=file_attachment(source.spec, source.read_all()))


def upload_large(graph: GraphClient, mailbox: str, message_id: str, source: Source) -> None:
    """Upload one attachment through an upload session in ordered ≤ 4 MB chunks."""
    path = (
        f"{mailbox_path(mailbox)}/messages/{quote(message_id, safe='')}"
        "/attachments/createUploadSession"
    )
    item: dict = {
        "attachmentType": "file",
        "name": source.spec.name,
        "size": source.size,
        "isInline": source.spec.is_inline,
        "contentType": source.spec.content_type or "application/octet-stream",
    }
    if source.spec.content_id:
        item["contentId"] = source.spec.content_id
    try:
        session = graph.post(path, json={"AttachmentItem": item})
    except ValidationFailed as exc:
        if exc.graph is None or exc.graph.code != SESSION_TOO_SMALL:
            raise
        add_small(graph, mailbox, message_id, source)  # nothing was read from the source yet
        return
    upload_url = session["uploadUrl"]
    offset = 0
    for chunk in source.chunks():
        end = offset + len(chunk) - 1
        # The upload URL is pre-authenticated: sending our bearer token there would leak it.
        graph.request(
            "PUT",
            upload_url,
            data=chunk,
            headers={
                "Content-Range": f"bytes {offset}-{end}/{source.size}",
                "Content-Type": "application/octet-stream",
            },
            authenticated=False,
            idempotent=False,
        )
        offset = end + 1
    if offset != source.size:
        raise AttachmentFetchFailed(
            f"{source.spec.name}: uploaded {offset} of {source.size} bytes."
        )
