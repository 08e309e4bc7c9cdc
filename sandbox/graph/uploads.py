"""Attachment upload sessions: createUploadSession and the pre-authenticated, ordered PUT URL."""

from __future__ import annotations

import hmac
import re
import sqlite3
from typing import Any
from urllib.parse import quote

from sandbox.context import SandboxContext
from sandbox.graph.errors import GraphError, bad_request, error_response, id_headers, too_large
from sandbox.graph.store import Store
from sandbox.web import BadRequestBody, Request, Response

_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")
MIN_SESSION_BYTES = 3 * 1024 * 1024


class Uploads:
    """Large attachments (3–150 MB) arrive in ordered chunks of at most 4 MB."""

    def __init__(self, ctx: SandboxContext, store: Store) -> None:
        self.ctx = ctx
        self.store = store

    def create(self, req: Request, mailbox: Any, message: sqlite3.Row) -> Response:
        """POST …/attachments/createUploadSession → 201 uploadSession."""
        body = req.json()
        item = body.get("AttachmentItem") if isinstance(body, dict) else None
        if not isinstance(item, dict):
            raise bad_request("The request needs an 'AttachmentItem'.")
        if str(item.get("attachmentType", "file")).lower() != "file":
            raise bad_request("The sandbox supports upload sessions for file attachments only.")
        name, size = item.get("name"), item.get("size")
        if not isinstance(name, str) or not name:
            raise bad_request("AttachmentItem needs a 'name'.")
        if not isinstance(size, int) or size < 0:
            raise bad_request("AttachmentItem needs a 'size' in bytes.")
        if size < MIN_SESSION_BYTES:
            raise GraphError(
                400,
                "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize",
                "Attachment size must be greater than the minimum size.",
            )
        maximum = int(self.ctx.limits.get("maxUploadSessionBytes", 150 * 1024 * 1024))
        if size > maximum:
            raise GraphError(
                400,
                "ErrorAttachmentSizeShouldNotBeMoreThanMaximumSize",
                f"Attachment size must not be more than {maximum} bytes.",
            )
        session = self.store.create_upload(
            mailbox.id,
            message["immutable_id"],
            name,
            item.get("contentType") or "application/octet-stream",
            size,
            bool(item.get("isInline", False)),
            item.get("contentId"),
        )
        url = (
            f"{req.base_url}/upload/attachmentSessions/{session['id']}"
            f"?authtoken={quote(session['secret'])}"
        )
        return Response.json(
            {
                "@odata.context": f"{req.base_url}/v1.0/$metadata#microsoft.graph.uploadSession",
                "uploadUrl": url,
                "expirationDateTime": session["expires"],
                "nextExpectedRanges": ["0-"],
            },
            201,
        )

    def put(self, req: Request) -> Response:
        """PUT (next chunk) or DELETE (cancel) on the upload URL; no bearer token, the URL is it."""
        try:
            response = self._put(req)
        except GraphError as err:
            response = error_response(req, err)
        except BadRequestBody as exc:
            response = error_response(req, bad_request(str(exc)))
        response.headers.update(id_headers(req))
        return response

    def _put(self, req: Request) -> Response:
        session = self.store.upload(req.params["session"])
        token = req.arg("authtoken") or ""
        if session is None or not hmac.compare_digest(session["secret"], token):
            raise GraphError(404, "ErrorItemNotFound", "The upload session does not exist.")
        if req.method == "DELETE":
            self.store.delete_upload(session["id"])
            return Response(204)
        maximum = int(self.ctx.limits.get("maxUploadChunkBytes", 4 * 1024 * 1024))
        if len(req.body) > maximum:
            raise too_large(maximum)
        m = _RANGE.match(req.headers.get("content-range") or "")
        if not m:
            raise bad_request("The Content-Range header must be 'bytes start-end/total'.")
        start, end, total = (int(g) for g in m.groups())
        if total != session["size"]:
            raise bad_request(
                f"The total in Content-Range ({total}) is not the session's size "
                f"({session['size']})."
            )
        if end < start or end - start + 1 != len(req.body):
            raise bad_request("The Content-Range does not match the length of the body.")
        if start != session["received"] or end >= total:
            raise GraphError(
                416,
                "InvalidRange",
                f"The fragment {start}-{end} is out of order: the next expected range "
                f"starts at {session['received']}.",
            )
        received = self.store.append_upload(session, req.body)
        if received < total:
            return Response.json(
                {"expirationDateTime": session["expires"], "nextExpectedRanges": [str(received)]}
            )
        session = self.store.upload(session["id"])
        att = self.store.finish_upload(session)
        location = (
            f"{req.base_url}/v1.0/users/{session['mailbox']}/messages/{session['message']}"
            f"/attachments/{att['id']}"
        )
        return Response(201, b"", {"Location": location})
