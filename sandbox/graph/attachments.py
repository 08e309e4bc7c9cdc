"""Attachments of a message: list, add (≤ 3 MB), get, delete, raw bytes, and upload sessions."""

from __future__ import annotations

import sqlite3

from sandbox.graph import model, odata, query
from sandbox.graph.call import Call
from sandbox.graph.errors import bad_request, item_not_found
from sandbox.graph.messages import MESSAGE, MessageOps
from sandbox.graph.render import collection_context, entity_context, select_plain, with_context
from sandbox.graph.services import Services
from sandbox.graph.uploads import Uploads
from sandbox.web import Response

# itemattachment-get.md: "$expand=microsoft.graph.itemattachment/item" adds the attached item.
ITEM_EXPAND = "microsoft.graph.itemattachment/item"


class AttachmentOps:
    def __init__(self, svc: Services, messages: MessageOps, uploads: Uploads) -> None:
        self.svc = svc
        self.messages = messages
        self.uploads = uploads

    def routes(self) -> list[tuple[str, str, object]]:
        return [
            ("GET POST", rf"{MESSAGE}/attachments", self.attachments),
            ("POST", rf"{MESSAGE}/attachments/createUploadSession", self.create_upload),
            ("GET DELETE", rf"{MESSAGE}/attachments/(?P<attachment>[^/]+)", self.attachment),
            ("GET", rf"{MESSAGE}/attachments/(?P<attachment>[^/]+)/\$value", self.value),
        ]

    def _context(self, call: Call, row: sqlite3.Row) -> str:
        return f"messages('{row['id']}')/attachments"

    def attachments(self, call: Call) -> Response:
        """GET the list (with contentBytes) or POST a fileAttachment (≤ 3 MB)."""
        call.allow(write=call.req.method == "POST")
        row = self.messages.row(call)
        if call.req.method == "POST":
            f = model.attachment_input(call.req.json(), self.svc.limits, call.name_of)
            data = model.stored_data(row)
            self.messages.check_size(
                call, data, [*self.messages.stored_sizes(row), len(f["content"])]
            )
            att = self.svc.store.add_attachment(
                row["immutable_id"],
                f["name"],
                f["contentType"],
                f["content"],
                f["isInline"],
                f["contentId"],
                f["kind"],
            )
            context = entity_context(call.req, call.mailbox.id, self._context(call, row))
            return Response.json(with_context(context, self.svc.render.attachment(att)), 201)
        select = odata.parse_select(call.req.arg("$select"), "attachment")
        with_bytes = select is None or "contentbytes" in {s.lower() for s in select}
        items = [
            self.svc.render.attachment(a, with_bytes)
            for a in self.svc.store.attachments(row["immutable_id"])
        ]
        context = collection_context(call.req, call.mailbox.id, self._context(call, row), select)
        return Response.json(
            query.page(
                call.req,
                items,
                lambda i, sel, _expand: select_plain(i, sel),
                type_name="attachment",
                context=context,
                default_top=1000,
            )
        )

    def _row(self, call: Call) -> tuple[sqlite3.Row, sqlite3.Row]:
        row = self.messages.row(call)
        att = self.svc.store.attachment(row["immutable_id"], call.params["attachment"])
        if att is None:
            raise item_not_found()
        return row, att

    def attachment(self, call: Call) -> Response:
        call.allow(write=call.req.method == "DELETE")
        row, att = self._row(call)
        if call.req.method == "DELETE":
            self.svc.store.delete_attachment(att)
            return Response(204)
        expand = (call.req.arg("$expand") or "").strip()
        with_item = expand.lower() == ITEM_EXPAND
        if expand and not with_item:
            raise bad_request(
                f"Parsing OData Select and Expand failed: only {ITEM_EXPAND} can be expanded on "
                "an attachment."
            )
        context = entity_context(call.req, call.mailbox.id, self._context(call, row))
        shaped = self.svc.render.attachment(att, with_item=with_item)
        return Response.json(with_context(context, shaped))

    def value(self, call: Call) -> Response:
        call.allow(write=False)
        _, att = self._row(call)
        if att["kind"] == "item":
            raise bad_request("The sandbox does not export an item attachment's MIME content.")
        content = self.svc.store.content(att)
        return Response(200, content, {"Content-Type": att["content_type"]})

    def create_upload(self, call: Call) -> Response:
        call.allow(write=True)
        row = self.messages.row(call)
        return self.uploads.create(call, row, self.messages)
