"""Messages: list (OData), create a draft, get, update, delete, move and copy."""

from __future__ import annotations

import base64
import json
import secrets
import sqlite3
import struct
import time
from typing import Any

from sandbox.graph import ids, mime, model, odata, query, size
from sandbox.graph.call import Call
from sandbox.graph.errors import item_not_found
from sandbox.graph.folders import MB, FolderOps
from sandbox.graph.mime import MimeBuilder
from sandbox.graph.render import collection_context, entity_context, with_context
from sandbox.graph.services import Services
from sandbox.graph.store import WELL_KNOWN_NAMES, now_iso
from sandbox.web import Response

MESSAGE = rf"{MB}(?:/mailFolders/[^/]+)?/messages/(?P<message>[^/]+)"
_FILETIME_EPOCH = 11644473600  # seconds from 1601-01-01 to 1970-01-01


def conversation_index() -> str:
    """A new conversation's index: a reserved byte, 5 bytes of FILETIME, a 16-byte GUID."""
    filetime = int((time.time() + _FILETIME_EPOCH) * 10_000_000)
    header = b"\x01" + struct.pack(">Q", filetime)[1:6]
    return base64.b64encode(header + secrets.token_bytes(16)).decode()


def create_message(
    svc: Services, mailbox: Any, folder_id: str, data: dict[str, Any], *, draft: bool
) -> sqlite3.Row:
    """Store a new message with Graph's defaults; `data["attachments"]` become attachments.

    A draft has sentDateTime and receivedDateTime of its creation, as Graph shows them
    (user-post-messages.md, example 1).
    """
    now = now_iso()
    files = data.pop("attachments", [])
    record: dict[str, Any] = {
        "createdDateTime": now,
        "lastModifiedDateTime": now,
        "changeKey": ids.change_key(),
        "categories": [],
        "receivedDateTime": now,
        "sentDateTime": now,
        "internetMessageId": model.new_internet_message_id(mailbox.address.split("@")[-1]),
        "subject": "",
        "importance": "normal",
        "conversationId": ids.conversation_id(mailbox.id),
        "conversationIndex": conversation_index(),
        "isDeliveryReceiptRequested": False,
        "isReadReceiptRequested": False,
        "isRead": True,
        "isDraft": draft,
        "inferenceClassification": "focused",
        "body": {"contentType": "text", "content": ""},
        "sender": None,
        "from": None,
        "toRecipients": [],
        "ccRecipients": [],
        "bccRecipients": [],
        "replyTo": [],
        "flag": {"flagStatus": "notFlagged"},
        "internetMessageHeaders": [],
        "singleValueExtendedProperties": [],
    }
    record.update(data)
    row = svc.store.create_message(mailbox.id, folder_id, record)
    for f in files:
        svc.store.add_attachment(
            row["immutable_id"],
            f["name"],
            f["contentType"],
            f["content"],
            f["isInline"],
            f["contentId"],
            f.get("kind", "file"),
        )
    return row


def folder_ref(value: Any) -> str:
    """A destinationId: a well-known folder name or a well-formed folder id (else 400)."""
    if not isinstance(value, str) or not value:
        raise ids.malformed()
    if value.lower() in WELL_KNOWN_NAMES:
        return value
    return ids.check(value, "folder")


class MessageOps:
    def __init__(self, svc: Services, folders: FolderOps) -> None:
        self.svc = svc
        self.folders = folders
        self.mime_builder = MimeBuilder(
            svc.store.attachments, lambda att: svc.store.blob_chunks(att, mime.CHUNK_BYTES)
        )

    def routes(self) -> list[tuple[str, str, object]]:
        return [
            ("GET POST", rf"{MB}/mailFolders/(?P<folder>[^/]+)/messages", self.messages),
            ("GET POST", rf"{MB}/messages", self.messages),
            ("GET PATCH DELETE", MESSAGE, self.message),
            ("POST", rf"{MESSAGE}/move", self.move),
            ("POST", rf"{MESSAGE}/copy", self.copy),
            ("GET", rf"{MESSAGE}/\$value", self.mime),
        ]

    # -- helpers used by the other operations modules ----------------------------------------

    def row(self, call: Call) -> sqlite3.Row:
        """The URL's message (REST or immutable id); raises 404 ErrorItemNotFound."""
        row = self.svc.store.message(call.mailbox.id, call.params["message"])
        if row is None:
            raise item_not_found()
        return row

    def one(self, call: Call, row: sqlite3.Row, status: int = 200) -> Response:
        """One message as the answer, with $select/$expand applied and its @odata.context."""
        odata.check_options(list(call.req.query))
        full = self.svc.render.message(row, call.req, call.immutable)
        select = odata.parse_select(call.req.arg("$select"), "message")
        expand = odata.parse_expand(call.req.arg("$expand"), "message")
        shaped = self.svc.render.project(full, select, expand)
        context = entity_context(call.req, call.mailbox.id, "messages")
        return Response.json(with_context(context, shaped), status)

    def check_size(self, call: Call, data: dict[str, Any], attachment_sizes: list[int]) -> None:
        """ErrorMessageSizeExceeded when the message would be over the mailbox's maximum."""
        maximum = size.max_send_size(self.svc.limits, call.mailbox.address)
        size.check(size.mime_size(data, attachment_sizes), maximum)

    def stored_sizes(self, row: sqlite3.Row) -> list[int]:
        return [a["size"] for a in self.svc.store.attachments(row["immutable_id"])]

    def attachment_names(self, message: dict[str, Any]) -> str:
        """Names of a rendered message's attachments (for $search attachment:)."""
        row = self.svc.store.message_anywhere(message["id"])
        if row is None:
            return ""
        return " ".join(a["name"] for a in self.svc.store.attachments(row["immutable_id"]))

    # -- operations --------------------------------------------------------------------------

    def messages(self, call: Call) -> Response:
        """GET lists (OData options, $search); POST creates a draft."""
        ref = call.params.get("folder")
        if call.req.method == "POST":
            call.allow(write=True)
            folder = self.folders.row(call, ref or "drafts")
            data = model.clean_input(call.req.json(), self.svc.limits, names=call.name_of)
            self.check_size(call, data, [len(f["content"]) for f in data.get("attachments", [])])
            row = create_message(self.svc, call.mailbox, folder["id"], data, draft=True)
            return self.one(call, row, 201)
        call.allow(write=False)
        folder_id = self.folders.row(call, ref)["id"] if ref else None
        rows = self.svc.store.messages(call.mailbox.id, folder_id)
        items = [self.svc.render.message(r, call.req, call.immutable) for r in rows]
        if not call.req.arg("$orderby") and not call.req.arg("$filter"):
            # Graph's default order is newest first.
            items.sort(key=lambda m: m.get("receivedDateTime") or "", reverse=True)
        select = odata.parse_select(call.req.arg("$select"), "message")
        context = collection_context(call.req, call.mailbox.id, "messages", select)
        return Response.json(
            query.page(
                call.req,
                items,
                self.svc.render.project,
                type_name="message",
                context=context,
                attachment_names=self.attachment_names,
            )
        )

    def message(self, call: Call) -> Response:
        """GET, PATCH or DELETE one message."""
        call.allow(write=call.req.method != "GET")
        row = self.row(call)
        if call.req.method == "GET":
            return self.one(call, row)
        if call.req.method == "DELETE":
            self.svc.store.delete_message(row)
            return Response(204)
        data = json.loads(row["data"])
        changes = model.clean_input(
            call.req.json(), self.svc.limits, existing=data, names=call.name_of
        )
        if "attachments" in changes:
            raise model.invalid_property_set("Add attachments with POST …/attachments, not PATCH.")
        if "singleValueExtendedProperties" in changes:
            changes["singleValueExtendedProperties"] = model.merge_extended(
                data.get("singleValueExtendedProperties") or [],
                changes["singleValueExtendedProperties"],
            )
        data.update(changes)
        self.check_size(call, data, self.stored_sizes(row))
        data["lastModifiedDateTime"] = now_iso()
        data["changeKey"] = ids.change_key()
        return self.one(call, self.svc.store.update_message(row, data))

    def move(self, call: Call) -> Response:
        """POST …/move: 201 with the message under its new id (the old id is gone)."""
        call.allow(write=True)
        row = self.row(call)
        target = self._destination(call)
        return self.one(call, self.svc.store.move_message(row, target["id"]), 201)

    def copy(self, call: Call) -> Response:
        call.allow(write=True)
        row = self.row(call)
        target = self._destination(call)
        data = json.loads(row["data"])
        new = self.svc.store.create_message(call.mailbox.id, target["id"], data)
        self.svc.store.copy_attachments(row["immutable_id"], new["immutable_id"])
        return self.one(call, new, 201)

    def mime(self, call: Call) -> Response:
        """GET …/$value: the message as RFC 5322 MIME, streamed (Graph answers it as
        text/plain, outlook-get-mime-message.md), its length known up front."""
        call.allow(write=False)
        odata.check_options(list(call.req.query))
        row = self.row(call)
        rendering = self.mime_builder.render(json.loads(row["data"]), row["immutable_id"])
        return Response(
            200,
            rendering.chunks(),
            {"Content-Type": "text/plain", "Content-Length": str(rendering.size)},
        )

    def _destination(self, call: Call) -> sqlite3.Row:
        """The folder of the action's DestinationId (read case-insensitively, as Graph)."""
        params = model.action_params(call.req.json(), ("destinationId",))
        if "destinationId" not in params:
            raise model.bad_request(
                "The request needs a 'destinationId' (folder id or well-known name)."
            )
        folder = self.svc.store.folder(call.mailbox.id, folder_ref(params["destinationId"]))
        if folder is None:
            raise item_not_found()
        return folder
