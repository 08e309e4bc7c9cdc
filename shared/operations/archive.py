"""A message's MIME (.eml) from Graph's `$value`: opened as a stream, or PUT to an archive URL.

Nothing holds the whole message in memory: the PUT first spools Graph's answer to a temporary
file (memory holds one read; the SHA-256 and size are computed on the way), then sends that
file with its Content-Length, which blob storage requires. The archive URL passes the same
checks as an attachment URL (https, the connection's `archiveUrlHosts`, no internal address,
then and at connect time), redirects are not followed, and its query (a SAS token) never
appears in an error, a log line or the result. Raises ValidationFailed (URL not allowed, the
server answered a redirect or 4xx), ArchiveFailed (network, 5xx), MessageNotFound and Graph's
mapped errors.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import tempfile
from collections.abc import Iterator
from typing import IO
from urllib.parse import quote

import requests

from shared.errors import ArchiveFailed, Detail, ValidationFailed
from shared.graph.client import mailbox_path
from shared.models import ArchiveResult
from shared.operations.context import OperationContext
from shared.urlsafety import check_attachment_url, forbidden_peer_in, redact_url

log = logging.getLogger(__name__)

READ_BYTES = 256 * 1024
SPOOL_IN_MEMORY = 1024 * 1024
PUT_TIMEOUT = (10.0, 120.0)
MIME_TYPE = "message/rfc822"
# The MIME, uncompressed (Graph answers it as text/plain, not JSON).
MIME_HEADERS = {"Accept": "*/*", "Accept-Encoding": "identity"}


def check_archive_url(url: str, ctx: OperationContext, field: str) -> None:
    """Raise ValidationFailed unless the connection may PUT to `url` (before anything acts)."""
    check_attachment_url(
        url,
        field=field,
        allowed_hosts=ctx.connection.archive_url_hosts,
        allow_private=ctx.connection.allow_private_attachment_hosts,
        allowlist="archiveUrlHosts",
        what="An archive URL",
        resolve=ctx.resolve,
    )


def mime_path(mailbox: str, message_id: str) -> str:
    return f"{mailbox_path(mailbox)}/messages/{quote(message_id, safe='')}/$value"


def open_mime(ctx: OperationContext, mailbox: str, message_id: str) -> requests.Response:
    """Graph's `$value` of the message, its body unread (close it when done)."""
    # Uncompressed, so the bytes (and Content-Length) are the .eml itself.
    return ctx.graph.stream(mime_path(mailbox, message_id), headers=MIME_HEADERS)


def mime_length(resp: requests.Response) -> int | None:
    """The .eml's length when Graph said it (and did not compress it), else None."""
    length = resp.headers.get("Content-Length")
    if resp.headers.get("Content-Encoding", "identity") != "identity" or not length:
        return None
    return int(length) if length.isdigit() else None


def mime_chunks(resp: requests.Response) -> Iterator[bytes]:
    """The MIME's bytes as they arrive (decompressed should Graph compress anyway), then the
    answer is closed."""
    try:
        while True:
            piece = resp.raw.read(READ_BYTES, decode_content=True)
            if not piece:
                return
            yield piece
    finally:
        resp.close()


def archive_message(
    ctx: OperationContext, mailbox: str, message_id: str, url: str, field: str
) -> ArchiveResult:
    """PUT the message's .eml to `url`; returns its size and SHA-256 as stored there."""
    check_archive_url(url, ctx, field)
    spool, size, digest = _spool(open_mime(ctx, mailbox, message_id))
    try:
        status = _put(ctx, url, spool, size, digest, field)
    finally:
        spool.close()
    return ArchiveResult(url=redact_url(url), size=size, sha256=digest.hex(), status=status)


def _spool(resp: requests.Response) -> tuple[IO[bytes], int, bytes]:
    """Graph's answer into a temporary file: (file at offset 0, size, SHA-256)."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - returned
    sha = hashlib.sha256()
    size = 0
    try:
        for piece in mime_chunks(resp):
            sha.update(piece)
            size += len(piece)
            spool.write(piece)
    except (requests.RequestException, OSError) as exc:
        spool.close()
        raise ArchiveFailed(
            f"Graph's MIME of the message broke off ({type(exc).__name__}); retry later."
        ) from None
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool, size, sha.digest()


def _put(
    ctx: OperationContext, url: str, body: IO[bytes], size: int, digest: bytes, field: str
) -> int:
    """PUT `body`; returns the archive server's status. No redirects (they could lead past the
    allowlist and the address checks); a 4xx is the caller's URL (e.g. an expired SAS)."""
    http = ctx.http if ctx.connection.allow_private_attachment_hosts else ctx.guarded_http
    headers = {
        "Content-Type": MIME_TYPE,
        "Content-Length": str(size),
        # Azure Blob Storage needs the blob type on a Put Blob; other servers ignore it.
        "x-ms-blob-type": "BlockBlob",
        # RFC 9530: the receiver can check what it got.
        "Repr-Digest": f"sha-256=:{base64.b64encode(digest).decode()}:",
    }
    try:
        resp = http.put(url, data=body, headers=headers, timeout=PUT_TIMEOUT, allow_redirects=False)
    except requests.RequestException as exc:
        if forbidden_peer_in(exc):
            raise ValidationFailed(
                "An archive URL is not allowed.",
                details=[Detail(field, "the host resolved to an internal address")],
            ) from None
        # `from None`: the requests error's text holds the whole URL, SAS query included.
        log.warning("archive PUT to %s failed: %s", redact_url(url), type(exc).__name__)
        raise ArchiveFailed(f"{field}: could not PUT the .eml ({type(exc).__name__}).") from None
    status = resp.status_code
    resp.close()
    if 300 <= status < 400:
        raise ValidationFailed(
            "The archive URL answered with a redirect, which is not followed.",
            details=[Detail(field, f"the server answered HTTP {status} (a redirect)")],
        )
    if 400 <= status < 500:
        raise ValidationFailed(
            "The archive URL refused the .eml.",
            details=[Detail(field, f"the server answered HTTP {status}")],
        )
    if status >= 500 or status < 200:
        raise ArchiveFailed(f"{field}: the archive server answered HTTP {status}.")
    return status
