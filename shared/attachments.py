"""Attachment bytes from base64 or an https URL, streamed in bounded chunks, and their upload.

Small attachments travel inline on the message; anything over 3 MB goes through a Graph upload
session in ordered chunks read straight from the source, so memory stays at about one chunk
whatever the file size. Raises `ValidationFailed` (bad URL, source answered 4xx),
`PayloadTooLarge` (over ATTACHMENT_MAX_BYTES), `AttachmentFetchFailed` (network, 5xx).
"""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING
from urllib.parse import quote

import requests

from shared.errors import AttachmentFetchFailed, Detail, PayloadTooLarge, ValidationFailed
from shared.models import Attachment
from shared.urlsafety import check_attachment_url

if TYPE_CHECKING:
    from shared.connections import Connection
    from shared.graph import GraphClient

# Graph: file attachments POSTed with the message must be under 3 MB; bigger ones need an
# upload session. Chunks must be ≤ 4 MB and Graph advises multiples of 320 KiB.
UPLOAD_THRESHOLD = 3 * 1024 * 1024
CHUNK_BYTES = 12 * 320 * 1024  # 3.75 MiB
FETCH_TIMEOUT = (10.0, 30.0)


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
    data = base64.b64decode(spec.content_bytes or "")
    view = memoryview(data)
    return Source(
        spec,
        len(data),
        lambda: (bytes(view[i : i + CHUNK_BYTES]) for i in range(0, len(data), CHUNK_BYTES)),
    )


def from_url(
    spec: Attachment,
    *,
    field: str,
    connection: Connection,
    session: requests.Session,
    max_bytes: int,
    resolve: Callable[[str, int], list[str]] | None = None,
) -> Source:
    """Open the URL (after the safety checks) and return a streaming Source."""
    url = spec.url or ""
    kwargs = {"resolve": resolve} if resolve else {}
    check_attachment_url(
        url,
        field=field,
        allowed_hosts=connection.attachment_url_hosts,
        allow_private=connection.allow_private_attachment_hosts,
        **kwargs,
    )
    try:
        # No redirects: a redirect could lead past the host allowlist and the address checks.
        resp = session.get(url, stream=True, timeout=FETCH_TIMEOUT, allow_redirects=False)
    except requests.RequestException as exc:
        raise AttachmentFetchFailed(
            f"{field}: could not fetch the URL ({type(exc).__name__})."
        ) from exc
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
                for chunk in _rechunk(resp.iter_content(256 * 1024), CHUNK_BYTES):
                    got += len(chunk)
                    if got > size:
                        raise AttachmentFetchFailed(f"{field}: more bytes than Content-Length.")
                    yield chunk
            except requests.RequestException as exc:
                raise AttachmentFetchFailed(f"{field}: the download broke off.") from exc
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


def _spool(resp: requests.Response, field: str, max_bytes: int) -> IO[bytes]:
    spool = tempfile.SpooledTemporaryFile(max_size=CHUNK_BYTES)  # noqa: SIM115 - returned
    total = 0
    try:
        for piece in resp.iter_content(256 * 1024):
            total += len(piece)
            if total > max_bytes:
                spool.close()
                raise _too_large(field, max_bytes)
            spool.write(piece)
    except requests.RequestException as exc:
        spool.close()
        raise AttachmentFetchFailed(f"{field}: the download broke off.") from exc
    finally:
        resp.close()
    return spool


def _too_large(field: str, max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"{field}: the attachment is larger than the limit of {max_bytes} bytes.",
        details=[Detail(field, f"larger than {max_bytes} bytes")],
    )


def file_attachment(spec: Attachment, data: bytes) -> dict:
    """A Graph fileAttachment object for bytes we hold."""
    item: dict = {
        "@odata.type": "#microsoft.graph.fileAttachment",
        "name": spec.name,
        "contentType": spec.content_type or "application/octet-stream",
        "contentBytes": base64.b64encode(data).decode("ascii"),
        "isInline": spec.is_inline,
    }
    if spec.content_id:
        item["contentId"] = spec.content_id
    return item


def add_small(graph: GraphClient, mailbox: str, message_id: str, source: Source) -> None:
    """POST one attachment under 3 MB to an existing message."""
    path = f"users/{quote(mailbox, safe='@')}/messages/{quote(message_id, safe='')}/attachments"
    graph.post(path, json=file_attachment(source.spec, source.read_all()))


def upload_large(graph: GraphClient, mailbox: str, message_id: str, source: Source) -> None:
    """Upload one attachment through an upload session in ordered ≤ 4 MB chunks."""
    path = (
        f"users/{quote(mailbox, safe='@')}/messages/{quote(message_id, safe='')}"
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
    session = graph.post(path, json={"AttachmentItem": item})
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
