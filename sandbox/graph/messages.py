"""Messages: list (OData), create a draft, get, update, delete, move and copy."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from sandbox.graph import model, odata, query
from sandbox.graph.call import Call
from sandbox.graph.errors import bad_request, item_not_found
from sandbox.graph.folders import MB, FolderOps
from sandbox.graph.services import Services
from sandbox.graph.store import new_id, now_iso
from sandbox.web import Response

MESSAGE = rf"{MB}(?:/mailFolders/[^/]+)?/messages/(?P<message>[^/]+)"


def create_message(
    svc: Services, mailbox: Any, folder_id: str, data: dict[str, Any], *, draft: bool
) -> sqlite3.Row:
    """Store a new message with Graph's defaults; `data["attachments"]` become attachments."""
    now = now_iso()
    files = data.pop("attachments", [])
    record: dict[str, Any] = {
        "createdDateTime": now,
        "lastModifiedDateTime": now,
        "changeKey": new_id("CQAAAB")[:28],
        "categories": [],
        "receivedDateTime": now,
        "sentDateTime": None if draft else now,
        "internetMessageId": model.new_internet_message_id(mailbox.address.split("@")[-1]),
        "subject": "",
        "importance": "normal",
        "conversationId": new_id("AAQkAG"),
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
        )
    return row


class MessageOps:
    def __init__(self, svc: Services, folders: FolderOps) -> None:
        self.svc = svc
        self.folders = folders

    def routes(self) -> list[tuple[str, str, object]]:
        return [
            ("GET POST", rf"{MB}/mailFolders/(?P<folder>[^/]+)/messages", self.messages),
            ("GET POST", rf"{MB}/messages", self.messages),
            ("GET PATCH DELETE", MESSAGE, self.message),
            ("POST", rf"{MESSAGE}/move", self.move),
            ("POST", rf"{MESSAGE}/copy", self.copy),
        ]

    # -- helpers used by the other operations modules ----------------------------------------

    def row(self, call: Call) -> sqlite3.Row:
        """The URL's message (REST or immutable id); raises 404 ErrorItemNotFound."""
        row = self.svc.store.message(call.mailbox.id, call.params["message"])
        if row is None:
            raise item_not_found()
        return row

    def one(self, call: Call, row: sqlite3.Row, status: int = 200) -> Response:
        """One message as the answer, with $select/$expand applied."""
        full = self.svc.render.message(row, call.req, call.immutable)
        select = odata.parse_select(call.req.arg("$select"))
        expand = odata.parse_expand(call.req.arg("$expand"))
        return Response.json(self.svc.render.project(full, select, expand), status)

    # -- operations --------------------------------------------------------------------------

    def messages(self, call: Call) -> Response:
        """GET lists (with $filter/$select/$orderby/$top/$expand); POST creates a draft."""
        folder_ref = call.params.get("folder")
        if call.req.method == "POST":
            call.allow(write=True)
            folder = self.folders.row(call, folder_ref or "drafts")
            data = model.clean_input(call.req.json(), self.svc.limits)
            row = create_message(self.svc, call.mailbox, folder["id"], data, draft=True)
            return self.one(call, row, 201)
        call.allow(write=False)
        folder_id = self.folders.row(call, folder_ref)["id"] if folder_ref else None
        rows = self.svc.store.messages(call.mailbox.id, folder_id)
        items = [self.svc.render.message(r, call.req, call.immutable) for r in rows]
        if not call.req.arg("$orderby") and not call.req.arg("$filter"):
            # Graph's default order is newest first.
            items.sort(key=lambda m: m.get("receivedDateTime") or "", reverse=True)
        return Response.json(query.page(call.req, items, self.svc.render.project))

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
        changes = model.clean_input(call.req.json(), self.svc.limits, existing=data)
        if "attachments" in changes:
            raise bad_request("Add attachments with POST …/attachments, not PATCH.")
        if "singleValueExtendedProperties" in changes:
            changes["singleValueExtendedProperties"] = model.merge_extended(
                data.get("singleValueExtendedProperties") or [],
                changes["singleValueExtendedProperties"],
            )
        data.update(changes)
        data["lastModifiedDateTime"] = now_iso()
        data["changeKey"] = new_id("CQAAAB")[:28]
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

    def _destination(self, call: Call) -> sqlite3.Row:
        body = call.req.json()
        dest = body.get("destinationId") if isinstance(body, dict) else None
        if not isinstance(dest, str) or not dest:
            raise bad_request("The request needs a 'destinationId' (folder id or well-known name).")
        folder = self.svc.store.folder(call.mailbox.id, dest)
        if folder is None:
            raise item_not_found()
        return folder
