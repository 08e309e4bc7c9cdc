"""The thin HTTP edge shared by the triggers: body in → operation → JSON, a streamed file, or
the one error shape.

The only module (besides the blueprints) that knows the HTTP types: the app runs on HTTP streams
(azurefunctions-extensions-http-fastapi, docs/architecture.md "The HTTP edge"), so a function
gets FastAPI's Request and answers a Response. The functions are async and share the worker's one
event loop; everything that blocks (Key Vault, MSAL, Graph, Table storage) runs in a worker
thread (`run_blocking`). Unexpected exceptions become a plain 500 with the operation id; the stack
trace goes to the log only.
"""

from __future__ import annotations

import contextlib
import io
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from azurefunctions.extensions.http.fastapi import Request, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from shared.api.validation import decode
from shared.downloads import Download
from shared.errors import AppError, PayloadTooLarge, ReauthRequired, ValidationFailed, to_http
from shared.kinds import kind as kind_named
from shared.models import (
    DraftRequest,
    ExportRequest,
    ForwardRequest,
    MoveRequest,
    OperationRequest,
    ReplyRequest,
    SendRequest,
)
from shared.oplog import OperationRecord, finish, operation_log

__all__ = [
    "MAX_REQUEST_BYTES",
    "Request",
    "RequestHead",
    "Response",
    "error_response",
    "handle",
    "json_response",
    "read_body",
    "request_head",
    "run_blocking",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

# Our own cap on a request body. Graph's 4 MB cap does not apply to us: a 6 MB base64
# attachment makes a ~8 MB body, which we split into upload-session chunks. The Functions host
# refuses bodies over 100 MB itself (FUNCTIONS_REQUEST_BODY_SIZE_LIMIT), so we match it.
MAX_REQUEST_BYTES = 100 * 1024 * 1024
JSON = "application/json"


@dataclass(frozen=True)
class RequestHead:
    """What the blocking part of a function needs of its request (plain data, no I/O)."""

    method: str
    url: str
    # Lower-case names; a field sent twice is joined with ", " (RFC 9110 5.3), as the classic
    # host passed headers on.
    headers: dict[str, str]
    # The first value of each query parameter, as the classic host's HttpRequest.params.
    query: dict[str, str]
    route: dict[str, str]


def request_head(req: Request) -> RequestHead:
    headers: dict[str, str] = {}
    for name, value in req.headers.items():
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    query: dict[str, str] = {}
    for name, value in req.query_params.multi_items():
        query.setdefault(name, value)
    route = {str(k): str(v) for k, v in req.path_params.items()}
    return RequestHead(req.method, str(req.url), headers, query, route)


async def run_blocking(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` in a worker thread: the event loop serves every request of the
    instance, so nothing that waits on the network may run on it."""
    return await run_in_threadpool(function, *args)


async def read_body(req: Request, limit: int = MAX_REQUEST_BYTES) -> bytes:
    """The body, read as it arrives with `limit` enforced on the way (a declared length over it
    is refused before a byte is read); held once, never joined from copies.

    Raises PayloadTooLarge, ValidationFailed (the client went away mid-body).
    """
    declared = req.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The request body is over {limit} bytes.")
    # BytesIO grows one buffer and getvalue() hands that buffer over as the bytes object, where
    # joining the pieces (Request.body()) would hold the body twice at the end.
    buffer = io.BytesIO()
    try:
        async for piece in req.stream():
            if buffer.tell() + len(piece) > limit:
                raise PayloadTooLarge(f"The request body is over {limit} bytes.")
            buffer.write(piece)
    except ClientDisconnect:
        raise ValidationFailed("The request body ended before it was complete.") from None
    return buffer.getvalue()


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        content=msgspec.json.encode(body), status_code=status, headers=headers, media_type=JSON
    )


def error_response(error: BaseException, operation_id: str | None) -> Response:
    status, headers, body = to_http(error, operation_id)
    return json_response(status, body, headers)


def _describe(record: OperationRecord, request: OperationRequest) -> None:
    """Log fields about the request: counts and masked addresses, never content."""
    if isinstance(request, MoveRequest | ExportRequest):
        record.address("mailbox", request.mailbox)
        record.fields["by"] = "messageId" if request.message_id else "internetMessageId"
        return
    if isinstance(request, ReplyRequest | ForwardRequest):
        record.address("mailbox", request.mailbox)
        record.fields["by"] = "messageId" if request.message_id else "internetMessageId"
    if isinstance(request, SendRequest | DraftRequest | ReplyRequest | ForwardRequest):
        record.address("from", request.from_)
        if request.sender:
            record.address("sender", request.sender)
        record.fields["recipients"] = len(request.to) + len(request.cc) + len(request.bcc)
        record.fields["attachments"] = len(request.attachments)


async def handle(req: Request, operation: str, success_status: int = 200) -> Response:
    """Run operation `operation` (a kind of shared.kinds) for an HTTP request: now
    (mode sync), or through the lifecycle (async/auto); answer in the API's shape, or stream
    the file the operation answers (the export's .eml)."""
    head = request_head(req)
    body: bytes | AppError
    try:
        body = await read_body(req)
    except AppError as exc:
        body = exc  # answered (and logged) as the operation's outcome
    answer = await run_blocking(_run, head, body, operation, success_status)
    if isinstance(answer, tuple):
        download, record = answer
        return DownloadResponse(download, record)
    return answer


def _run(
    head: RequestHead, body: bytes | AppError, operation: str, success_status: int
) -> Response | tuple[Download, OperationRecord]:
    """The blocking part of `handle`, in a worker thread."""
    # Heavy collaborators load on the first real request, not at import (cold start).
    from shared.runtime import get_runtime

    operation_id = str(uuid.uuid4())
    runtime = get_runtime()
    settings = runtime.settings
    kind = kind_named(operation)
    record = OperationRecord(operation_id, operation, mask=settings.mask_addresses_in_logs)
    try:
        with operation_log(record):
            if isinstance(body, AppError):
                raise body
            request = decode(kind.request, body)
            record.connection = request.connection
            header_key = head.headers.get("idempotency-key")
            if header_key:
                # The header wins over the body's idempotencyKey (docs/operations.md).
                request.idempotency_key = header_key[:200]
            _describe(record, request)
            from shared.api.modes import submit
            from shared.api.request_auth import authorize

            # The one check of the caller's right to act on the connection (before any work).
            authorize(runtime, request.connection, head.method, head.url, head.headers, body)
            from shared.api.modes import effective_mode

            request.mode = effective_mode(request)
            if request.mode != "sync":
                # async: queue it (202); auto: try now, queue it when it cannot end now.
                from shared.identity.signin import base_url

                record.fields["mode"] = request.mode
                status, result, headers = submit(
                    request,
                    operation,
                    operation_id,
                    base_url(settings.public_base_url, head.url),
                    runtime,
                    request_ids=record.request_ids,
                )
                return json_response(success_status if status == 200 else status, result, headers)
            ctx = runtime.context(request.connection, operation_id, request.user)
            ctx.graph.request_ids = record.request_ids
            result = kind.run(request, ctx)
            if isinstance(result, Download):
                # The stream ends the operation: its log line is written then (DownloadResponse).
                record.deferred = True
                return result, record
        return json_response(success_status, result)
    except AppError as exc:
        if isinstance(exc, ReauthRequired) and (exc.sign_in_url or "").startswith("/"):
            # Without PUBLIC_BASE_URL the link is relative: complete it from this request's URL.
            from shared.identity.signin import base_url

            exc.sign_in_url = base_url(settings.public_base_url, head.url) + (exc.sign_in_url or "")
        return error_response(exc, operation_id)
    except Exception as exc:
        log.exception("operation %s failed unexpectedly", operation_id)
        return error_response(exc, operation_id)


class _Counted:
    """A download's chunks as they are read, counted; remembers how the reading ended."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self.sent = 0
        self.ended = False
        self.failure: BaseException | None = None

    def __iter__(self) -> _Counted:
        return self

    def __next__(self) -> bytes:
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self.ended = True
            raise
        except Exception as exc:
            self.failure = exc
            raise
        self.sent += len(chunk)
        return chunk

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if callable(close):
            with contextlib.suppress(ValueError):  # still running in a thread: closed below
                close()


class DownloadResponse(StreamingResponse):
    """A file answer streamed as the operation's source produces it (each read in a worker
    thread), its source closed however the answer ends.

    When the source fails after the headers went out, the answer is left unfinished, which makes
    the server cut the connection: the client sees fewer bytes than Content-Length (or chunks
    without their end), never an error page glued to a partial file. The operation's log line
    (outcome `succeeded`, `client_gone` or `source_failed`, with the bytes sent) is written when
    the answer ends.
    """

    def __init__(self, download: Download, record: OperationRecord) -> None:
        self._download = download
        self._record = record
        self._counted = _Counted(iter(download.chunks))
        super().__init__(self._counted, status_code=200, headers=download.headers())

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        outcome = "client_gone"
        try:
            await super().__call__(scope, receive, send)
            if self._counted.ended:
                outcome = "succeeded"
        except ClientDisconnect:
            pass  # nobody left to answer
        except Exception as exc:
            if self._counted.failure is None:
                outcome = "internal_error"
                raise
            outcome = "source_failed"
            log.warning(
                "operation %s: the source of the %s broke after %d bytes (%s); the answer is "
                "cut short",
                self._record.operation_id,
                self._download.media_type,
                self._counted.sent,
                type(exc).__name__,
            )
        finally:
            self._counted.close()
            self._download.close()
            self._record.fields["bytes"] = self._counted.sent
            finish(self._record, outcome)
