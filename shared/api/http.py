"""The thin HTTP edge shared by the triggers: decode → operation → JSON response or error.

This is the only module (besides the blueprints) that knows azure.functions. Unexpected
exceptions become a plain 500 with the operation id; the stack trace goes to the log only.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import azure.functions as func
import msgspec

from shared.api.validation import decode
from shared.downloads import Download
from shared.errors import AppError, PayloadTooLarge, ReauthRequired, to_http
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
from shared.oplog import OperationRecord, operation_log

log = logging.getLogger(__name__)

# Our own cap on a request body. Graph's 4 MB cap does not apply to us: a 6 MB base64
# attachment makes a ~8 MB body, which we split into upload-session chunks. The Functions host
# refuses bodies over 100 MB itself (maxRequestBodySize), so we match it.
MAX_REQUEST_BYTES = 100 * 1024 * 1024
JSON = "application/json"


def json_response(
    status: int, body: Any, headers: dict[str, str] | None = None
) -> func.HttpResponse:
    return func.HttpResponse(
        body=msgspec.json.encode(body), status_code=status, headers=headers, mimetype=JSON
    )


def download_response(download: Download) -> func.HttpResponse:
    """A file answer. The classic Functions worker hands the host one body, so it is read here
    in full; the app switches to HTTP streams (docs/architecture.md) to stream it instead."""
    try:
        body = b"".join(download.chunks)
    finally:
        download.close()
    headers = download.headers()
    headers["Content-Length"] = str(len(body))
    return func.HttpResponse(body=body, status_code=200, headers=headers)


def error_response(error: BaseException, operation_id: str | None) -> func.HttpResponse:
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


def handle(req: func.HttpRequest, operation: str, success_status: int = 200) -> func.HttpResponse:
    """Run operation `operation` (a kind of shared.kinds) for an HTTP request: now
    (mode sync), or through the lifecycle (async/auto); answer in the API's shape."""
    # Heavy collaborators load on the first real request, not at import (cold start).
    from shared.runtime import get_runtime

    operation_id = str(uuid.uuid4())
    runtime = get_runtime()
    settings = runtime.settings
    kind = kind_named(operation)
    record = OperationRecord(operation_id, operation, mask=settings.mask_addresses_in_logs)
    try:
        with operation_log(record):
            body = req.get_body() or b""
            if len(body) > MAX_REQUEST_BYTES:
                raise PayloadTooLarge(f"The request body is over {MAX_REQUEST_BYTES} bytes.")
            request = decode(kind.request, body)
            record.connection = request.connection
            header_key = req.headers.get("Idempotency-Key")
            if header_key:
                # The header wins over the body's idempotencyKey (docs/operations.md).
                request.idempotency_key = header_key[:200]
            _describe(record, request)
            from shared.api.modes import submit
            from shared.api.request_auth import authorize

            # The one check of the caller's right to act on the connection (before any work).
            authorize(runtime, request.connection, req.method, req.url, req.headers, body)
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
                    base_url(settings.public_base_url, req.url),
                    runtime,
                    request_ids=record.request_ids,
                )
                return json_response(success_status if status == 200 else status, result, headers)
            ctx = runtime.context(request.connection, operation_id, request.user)
            ctx.graph.request_ids = record.request_ids
            result = kind.run(request, ctx)
            if isinstance(result, Download):
                return download_response(result)
        return json_response(success_status, result)
    except AppError as exc:
        if isinstance(exc, ReauthRequired) and (exc.sign_in_url or "").startswith("/"):
            # Without PUBLIC_BASE_URL the link is relative: complete it from this request's URL.
            from shared.identity.signin import base_url

            exc.sign_in_url = base_url(settings.public_base_url, req.url) + (exc.sign_in_url or "")
        return error_response(exc, operation_id)
    except Exception as exc:
        log.exception("operation %s failed unexpectedly", operation_id)
        return error_response(exc, operation_id)
