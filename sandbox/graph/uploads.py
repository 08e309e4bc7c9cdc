"""Attachment upload sessions: createUploadSession and the pre-authenticated, ordered PUT URL.

attachment-createuploadsession.md and outlook-large-attachments.md: files of 3-150 MB, ranges
uploaded in order, each chunk answered 200 with `ExpirationDateTime` and `nextExpectedRanges`
(that spelling is Graph's), the last one 201 with a Location; no bearer token on the URL.
"""

from __future__ import annotations

import hmac
import re
import sqlite3
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import quote

from sandbox.context import SandboxContext
from sandbox.graph import model
from sandbox.graph.errors import (
    GraphError,
    access_denied,
    bad_request,
    error_response,
    id_headers,
    too_large,
)
from sandbox.graph.permissions import is_own
from sandbox.graph.store import Store
from sandbox.graph.throttle import Throttle
from sandbox.web import BadRequestBody, Request, Response

if TYPE_CHECKING:
    from sandbox.graph.call import Call
    from sandbox.graph.messages import MessageOps

_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")
MIN_SESSION_BYTES = 3 * 1024 * 1024


def owner_of(call: Call) -> str:
    """Who opened a session: the upload throttle counts per app and mailbox."""
    return f"{call.principal.tenant_id}|{call.principal.app_id}"


class Uploads:
    """Large attachments (3–150 MB) arrive in ordered chunks of at most 4 MB."""

    def __init__(self, ctx: SandboxContext, store: Store, throttle: Throttle) -> None:
        self.ctx = ctx
        self.store = store
        self.throttle = throttle

    def create(self, call: Call, message: sqlite3.Row, messages: MessageOps) -> Response:
        """POST …/attachments/createUploadSession → 201 uploadSession."""
        req = call.req
        if (
            call.principal.kind == "user"
            and not is_own(call.principal, call.mailbox.address)
            and not self.ctx.limits.get("delegatedUploadSessionsInOtherMailboxes")
        ):
            # known-issues.md, "Attaching large files to messages with delegated permissions
            # can fail": "createUploadSession succeeds only if the message or event is in the
            # signed-in user's mailbox" (HTTP 403 otherwise).
            raise access_denied()
        params = model.action_params(req.json(), ("AttachmentItem",))
        item = params.get("AttachmentItem")
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
        # The file will make the message this big: refuse now rather than after the upload.
        messages.check_size(
            call, model.stored_data(message), [*messages.stored_sizes(message), size]
        )
        session = self.store.create_upload(
            call.mailbox.id,
            message["immutable_id"],
            name,
            item.get("contentType") or "application/octet-stream",
            size,
            bool(item.get("isInline", False)),
            item.get("contentId"),
            owner=owner_of(call),
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
        if _expired(session["expires"]):
            self.store.delete_upload(session["id"])
            raise GraphError(404, "ErrorItemNotFound", "The upload session has expired.")
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
        tenant, _, app = (session["owner"] or "|").partition("|")
        self.throttle.count_upload((tenant, app, session["mailbox"]), len(req.body))
        received = self.store.append_upload(session, req.body)
        if received < total:
            return Response.json(
                {
                    "@odata.context": f"{req.base_url}/v1.0/$metadata#microsoft.graph"
                    ".uploadSession",
                    "ExpirationDateTime": session["expires"],
                    "nextExpectedRanges": [str(received)],
                }
            )
        session = self.store.upload(session["id"])
        att = self.store.finish_upload(session)
        location = (
            f"{req.base_url}/v1.0/users/{quote(session['mailbox'], safe='')}/messages/"
            f"{quote(session['message'], safe='')}/attachments/{quote(att['id'], safe='')}"
        )
        return Response(201, b"", {"Location": location})


def _expired(expires: str) -> bool:
    try:
        when = datetime.strptime(expires[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return False
    return when < datetime.now(UTC)
